"""The embedded backend: a stand-in for the AI Solution Kit (see server.py)."""


class HandlerCrash(RuntimeError):
    """The kit's handler would raise here (not one of its own 400s): a Lambda crash, which API Gateway
    answers 502, or on a SageMaker route a Flask 500, which SageMaker wraps in a ModelError."""
