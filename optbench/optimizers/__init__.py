"""Optimizer plugins: parameter roles, the builder, and the in-repo algorithms."""
