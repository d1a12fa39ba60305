"""Parameter roles: how a task tells optimizers what each parameter is.

Matrix-aware optimizers (SWAN, GaLore, Muon, ...) act on ``matrix`` parameters only and hand the
rest to a fallback, the way their papers do. The builder passes roles to every optimizer as a
``"role"`` key on each parameter group, so plain ``torch.optim`` optimizers simply ignore it.
"""

from enum import Enum


class ParamRole(str, Enum):
    MATRIX = "matrix"  # hidden 2-D weights (attention, MLP, conv kernels flattened to 2-D)
    EMBEDDING = "embedding"  # token or input embeddings
    HEAD = "head"  # the output layer (LM head, classifier)
    VECTOR = "vector"  # norm gains, biases and other 1-D parameters
