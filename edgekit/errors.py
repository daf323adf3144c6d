"""Errors a user can act on. The CLI prints their message as one line and exits with `exit_code`."""


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
    (dynamic axes as N), so each front end (CLI flag, graph key) can say how."""

    def __init__(self, input_name: str, shape: str, example: str, why: str):
        super().__init__(f"input '{input_name}' has dynamic axes ({shape}) and {why}; "
                         f"fix them with --input-shape {input_name}:{example} (N = the size you deploy)")
        self.input_name, self.shape, self.example = input_name, shape, example


class ConversionError(Exception):
    """An upstream converter failed or produced a model we refuse to call converted."""

    exit_code = 1

    def __init__(self, fmt: str, message: str, log_tail: str = ""):
        super().__init__(f"{fmt}: {message}")
        self.format = fmt
        self.log_tail = log_tail


class VerificationFailed(Exception):
    """A converted model loaded but its outputs disagree with the ONNX Runtime reference."""

    exit_code = 1
