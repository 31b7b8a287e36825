"""Using a registered version: the model a server holds (following an alias), decoding rows, scoring, batch
prediction of files, and export to other runtimes (ONNX, safetensors).

No web framework here (that is ``server/``): these are the parts ``modelyard predict``,
``modelyard serve`` and ``modelyard export`` share.
"""

from .holder import Loaded, ModelHolder, load_version
from .scoring import Scores, score

__all__ = ["Loaded", "ModelHolder", "Scores", "load_version", "score"]
