"""Curvature probes: Hessian-vector products of a task's loss and the spectra they reveal.

- :mod:`.vectors`: parameter-space vectors (flatten/unflatten, seeded random draws)
- :mod:`.hvp`: :class:`~.hvp.LossHessian`, the loss Hessian over probe micro-batches as a ``matvec``
- :mod:`.precondition`: ``P^(-1/2) H P^(-1/2)`` and Adam's ``P`` (preconditioned sharpness)
- :mod:`.eigen`: Lanczos (top-k) and power iteration (top-1) on any symmetric ``matvec``
- :mod:`.trace`: Hutchinson's trace estimate
- :mod:`.thresholds`: the sharpness an optimizer can tolerate (edge-of-stability thresholds)
"""
