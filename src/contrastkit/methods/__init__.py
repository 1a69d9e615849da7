"""Self-supervised methods, each a plain ``nn.Module`` composing a backbone, heads and a loss.

``method(views, labels=None)`` returns a :class:`MethodOutput` (loss and metrics); ``method.embed(x)`` gives the
backbone features. Methods are registered by name for the config layer: :func:`create_method`, :func:`list_methods`.
"""

from contrastkit.methods.method import Method, MethodOutput, Progress
from contrastkit.methods.registry import create_method, get_method, list_methods, method_params, register_method
from contrastkit.methods.simclr import SimCLR

__all__ = [
    "Method",
    "MethodOutput",
    "Progress",
    "SimCLR",
    "create_method",
    "get_method",
    "list_methods",
    "method_params",
    "register_method",
]
