"""The one error of image builds: its message says what failed and what to do."""


class BuildError(Exception):
    pass
