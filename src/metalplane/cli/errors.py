"""The one error every CLI command raises: printed as one line, non-zero exit."""


class CliError(Exception):
    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status
