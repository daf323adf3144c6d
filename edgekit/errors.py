"""The one error tree. The CLI prints an EdgekitError's message as one line and exits with its `exit_code`;
a Python caller catches `EdgekitError` for every failure edgekit can explain.

    EdgekitError          exit 2: bad input or environment (nothing was written)
      BackendMissing        a backend's package or converter is not installed
      DynamicShape          a converter needs a static shape
      ModelError          exit 1: the input was fine, but the model cannot be made to work on a backend
        ConversionError     an upstream converter failed or produced a model we refuse to call converted
"""


class EdgekitError(Exception):
    """Bad input or an environment problem: one clear line, exit code 2, nothing written."""

    exit_code = 2


class BackendMissing(EdgekitError):
    """A backend's Python package (or converter binary) is not installed."""

    def __init__(self, backend: str, what: str, install: str):
        super().__init__(f"{backend}: {what} is not installed; install it with: {install}")
        self.backend = backend


class DynamicShape(EdgekitError):
    """A converter needs a static shape and the model's input has dynamic axes; `example` is the shape to give
    (dynamic axes as N), so each front end (CLI flag, Python argument, graph key) can say how."""

    def __init__(self, input_name: str, shape: str, example: str, why: str):
        from .options import spell

        super().__init__(f"input '{input_name}' has dynamic axes ({shape}) and {why}; "
                         f"fix them with {spell('input_shapes', f'{input_name}:{example}')} "
                         "(N = the size you deploy)")
        self.input_name, self.shape, self.example = input_name, shape, example


class ModelError(EdgekitError):
    """The input was valid but the model cannot be made to work on a backend: exit code 1."""

    exit_code = 1


class ConversionError(ModelError):
    """An upstream converter failed or produced a model we refuse to call converted."""

    def __init__(self, fmt: str, message: str, log_tail: str = ""):
        super().__init__(f"{fmt}: {message}")
        self.format = fmt
        self.log_tail = log_tail

