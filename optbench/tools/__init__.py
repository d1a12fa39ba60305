"""Commands over runs without training them: memory of a config counted on the meta device, and
the curvature of a saved checkpoint."""
