"""What goes wrong when talking to a BMC. Pure: the region may import it too.

Every error names the BMC (its address, never its credentials) and, when the
BMC answered, quotes the answer: "authentication failed at BMC 10.0.0.5:
RAKP 2 HMAC is invalid". ``kind`` is a short stable word for status displays
and metrics; ``retryable`` says whether trying again soon can help (a wrong
password cannot; a lost packet can).
"""

from __future__ import annotations

from typing import ClassVar


class PowerError(Exception):
    """A power action failed.

    The message is ``summary`` (with ``{bmc}`` replaced by "BMC <address>"),
    then ``: detail``, then ``(answer_from: answer)`` when there is an answer.
    """

    kind: ClassVar[str] = "error"
    retryable: ClassVar[bool] = True
    #: Persistent errors mark the BMC failing at once (no point in a few more tries).
    persistent: ClassVar[bool] = False
    summary: ClassVar[str] = "power action failed at {bmc}"

    def __init_subclass__(
        cls, *, kind: str, summary: str, retryable: bool = True, persistent: bool = False, **kwargs: object
    ) -> None:
        """Each kind of error is a subclass whose class keywords set these four."""
        super().__init_subclass__(**kwargs)
        cls.kind, cls.summary, cls.retryable, cls.persistent = kind, summary, retryable, persistent

    def __init__(
        self, bmc: str | None, detail: str = "", *, answer: str | None = None, answer_from: str = "BMC answered"
    ):
        self.bmc = bmc
        self.detail = detail
        self.answer = answer
        self.answer_from = answer_from
        super().__init__(self._compose())

    def _compose(self) -> str:
        text = self.summary.format(bmc=f"BMC {self.bmc}" if self.bmc else "the BMC")
        if self.detail:
            text += f": {self.detail}"
        if self.answer and self.answer not in self.detail:
            text += f" ({self.answer_from}: {self.answer})"
        return text

    @property
    def message(self) -> str:
        return self.args[0] if self.args else ""

    def with_message(self, message: str) -> PowerError:
        """A copy of this error (same class and fields) whose message is `message`."""
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        Exception.__init__(copy, message)
        return copy


class PowerAuthError(
    PowerError, kind="auth", summary="authentication failed at {bmc}", retryable=False, persistent=True
):
    """The BMC refused the credentials (user, password, BMC key)."""


class PowerConfigError(
    PowerError, kind="config", summary="{bmc} rejected the power parameters", retryable=False, persistent=True
):
    """The parameters cannot work with this BMC: cipher suite, privilege, invalid values."""


class PowerTimeoutError(PowerError, kind="timeout", summary="no answer from {bmc}"):
    """No answer in time."""


class PowerConnectionError(PowerError, kind="unreachable", summary="cannot reach {bmc}"):
    """The BMC cannot be reached (refused, no route, name not found)."""


class PowerBMCError(PowerError, kind="bmc", summary="{bmc} answered with an error"):
    """The BMC answered, with an error."""


class PowerUnsupportedError(PowerError, kind="unsupported", summary="not supported by {bmc}", retryable=False):
    """The driver or the BMC cannot do this action."""


class PowerBackoffError(
    PowerError, kind="backoff", summary="{bmc} is failing; not called until its backoff ends", retryable=False
):
    """The rack is leaving a failing BMC alone until its backoff ends (no call was made)."""

    def __init__(self, bmc: str | None, detail: str = "", *, last_error: str | None = None, retry_in: float = 0.0):
        self.last_error = last_error
        self.retry_in = retry_in
        super().__init__(bmc, detail)
