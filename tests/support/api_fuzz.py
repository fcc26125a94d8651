"""A fuzzer for the MAAS API, driven by the region's own describe/.

It walks every handler, every action and every `:param` its doc declares, and
sends hypothesis-generated requests: values a client could mean (existing ids,
names, addresses) mixed with garbage (huge, unicode, NUL, negative, >= 2^31,
malformed CIDRs, IPs and MACs, IPv6 zone ids, missing fields), in every body
encoding MAAS clients use, as admin, as a non-admin user and anonymously.
`{uri params}` are filled with existing ids and with garbage. Separate walks
cover the body parsers, the OAuth header and the metadata API.

A request fails the walk when the answer is a 5xx, a 400 that names no field
(neither a JSON {field: [...]} body nor a text mentioning a parameter), an API
answer without X-MAAS-API-Hash, or a JSON answer that is not JSON. Each failure
carries the request in a form that can be pasted into Python to send it again.

Used by tests/integration/test_api_fuzz.py (bounded, seeded: reproducible in CI)
and bench/api_fuzz.py (longer, with shrinking).
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from metalplane.client.http import oauth_header

API = "api/2.0/"
HASH_HEADER = "x-maas-api-hash"
BODY_LIMIT = 2 * 1024 * 1024  # what the region reads of an API call's body before refusing it (413)
SEED_SALT = 0  # mixed into every walk's seed: CI keeps 0 (reproducible), the bench changes it per round
MAX_QUERY_VALUE = 2000  # characters of one query-string value (a URL has a length limit; a body does not)

# Inputs that broke (or could break) a region: each is tried in every parameter.
GARBAGE: list[str] = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "%00",
    "\x01\x7f",
    "\r\n",
    "x" * 300,
    "x" * 70_000,
    "ü" * 300,
    "\U0001d518\U0001d52b\U0001d526",
    "日本語",
    "-1",
    "0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "99999999999999999999999",
    "1e308",
    "1.5",
    "NaN",
    "true",
    "null",
    "[]",
    "{}",
    "{",
    "[1, 2]",
    '{"a": 1}',
    "fe80::1%eth0",
    "fd02::1%eth0",
    "1.2.3.999",
    "::",
    "0.0.0.0",
    "255.255.255.255",
    "10.0.0.1/33",
    "fe80::%eth0/64",
    "0.0.0.0/0",
    "10.0.0.0/-1",
    "2001:db8::/129",
    "10.250.0.0/16",
    "00:11:22:33:44:5g",
    "0011.2233.4455",
    "001122334455",
    "ff:ff:ff:ff:ff:ff",
    "aa-bb-cc-dd-ee",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "a/b",
    "a b",
    "fabric-0",
    "undefined",
    "default",
    "admin",
    "ntp_servers",
    "dynamic",
    "manual",
    "amd64/generic",
]
SETTING_NAMES = [
    "maas_name",
    "ntp_servers",
    "upstream_dns",
    "dhcp_lease_time",
    "default_dns_ttl",
    "kernel_opts",
    "enable_analytics",
    "ntp_server",
    "network_discovery",
]
NAME = st.from_regex(r"\A[a-z][a-z0-9-]{0,14}\Z")
IPV4 = st.builds(lambda c, d: f"10.250.{c}.{d}", st.integers(0, 255), st.integers(0, 255))
CIDRS = st.builds(lambda c, p: f"10.250.{c}.0/{p}", st.integers(0, 255), st.sampled_from([24, 25, 28, 16, 8]))
MACS = st.builds(lambda b: ":".join(f"{x:02x}" for x in b), st.binary(min_size=6, max_size=6))
INTS = st.one_of(st.integers(-5, 5000), st.sampled_from([-(2**31) - 1, 2**31 - 1, 2**31, 2**63, -(2**63)]))


@dataclass
class Action:
    handler: str
    path: str  # template under /MAAS/api/2.0/, e.g. "fabrics/{id}/"
    uri_params: list[str]
    name: str
    method: str
    op: str | None
    params: list[tuple[str, str]]  # (name, documented type)
    anon: bool

    @property
    def key(self) -> str:
        return f"{self.handler} {self.method} {self.name}"


PARAM_RE = re.compile(r":param (\w+):")
TYPE_RE = re.compile(r":type (\w+):\s*(\S+)")


def walk(description: dict[str, Any]) -> list[Action]:
    """Every action of every handler describe/ lists (auth and anonymous)."""
    actions: list[Action] = []
    for resource in description["resources"]:
        for side in ("anon", "auth"):
            handler = resource.get(side)
            if not handler:
                continue
            path = handler["path"].split("/api/2.0/", 1)[1]
            for a in handler["actions"]:
                names = list(dict.fromkeys(PARAM_RE.findall(a["doc"])))
                types = dict(TYPE_RE.findall(a["doc"]))
                actions.append(
                    Action(
                        handler["name"],
                        path,
                        list(handler["params"]),
                        a["name"],
                        a["method"],
                        a["op"],
                        [(n, types.get(n, "unicode")) for n in names],
                        side == "anon",
                    )
                )
    return actions


@dataclass
class Sent:
    """One request as it went out, and how to send it again."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    params: list[tuple[str, Any]] = field(default_factory=list)
    note: str = ""
    declared: frozenset[str] = frozenset()  # the parameters the action documents
    key: str = ""  # the action's key, for coverage

    def reproduce(self) -> str:
        body = repr(self.body) if len(self.body) <= 65_536 else f"<{len(self.body)} bytes, see params>"
        params = [
            (k, v if not isinstance(v, str) or len(v) <= 200 else f"{v[:50]!r}... ({len(v)} chars)")
            for k, v in self.params
        ]
        return (
            f"# {self.note}\n# params: {params}\n"
            f"import httpx; r = httpx.request({self.method!r}, {self.url!r}, headers={self.headers!r}, "
            f"content={body}); print(r.status_code, r.text[:2000])"
        )


@dataclass
class Failure:
    problem: str
    sent: Sent
    status: int
    answer: str

    def __str__(self) -> str:
        return f"{self.problem}: {self.status} {self.answer[:300]!r}\n{self.sent.reproduce()}"


def mentions(text: str, names: Iterable[str]) -> bool:
    lowered = text.lower()
    return any(n and n.lower() in lowered for n in names)


# 400s about the request as a whole: they have no field to name.
REQUEST_LEVEL = ("Unrecognised signature", "request body", "Content-Length", "No provided", "JSON")
# Refusals of the addressed object itself, whatever the parameters (MAAS's words for the
# reserved "undefined" space, id -1): no field is at fault, so none is named.
OBJECT_LEVEL = ("cannot be modified: undefined",)


# uvicorn's own answer to what is not HTTP (a header it cannot parse): the application never saw it.
NOT_HTTP = "Invalid HTTP request received."


def field_errors(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and bool(body)
        and all(
            isinstance(k, str) and k and isinstance(v, list) and v and all(isinstance(m, str) for m in v)
            for k, v in body.items()
        )
    )


def judge(sent: Sent, response: httpx.Response, api: bool = True) -> str | None:
    """Why this answer is wrong, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status} answer"
    if status == 400 and response.text == NOT_HTTP:
        return None
    if api and HASH_HEADER not in response.headers:
        return "no X-MAAS-API-Hash header"
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if not response.headers.get("content-type"):
        return "no Content-Type"
    body: Any = None
    if kind == "application/json":
        try:
            body = response.json()
        except ValueError:
            return "a JSON answer that is not JSON"
    if status != 400:
        return None
    if isinstance(body, dict):
        return None if field_errors(body) else "a 400 JSON body that is not {field: [reason, ...]}"
    if isinstance(body, list):
        return None if body and all(isinstance(m, str) and m for m in body) else "an empty 400 list"
    text = response.text
    if not text.strip():
        return "an empty 400"
    if any(marker in text for marker in REQUEST_LEVEL + OBJECT_LEVEL):
        return None
    try:
        if field_errors(json.loads(text)):
            return None  # the metadata API's plain-text form of {field: [reason]}
    except ValueError:
        pass
    sent_names = [name for name, _ in sent.params]
    if mentions(text, sent_names):
        return None  # names a parameter
    if not sent.declared & set(sent_names):
        return None  # a refusal of the action itself: no declared parameter was given to name
    return "a 400 naming no field"


class Fuzzer:
    """One region; `keys`: identity -> API key (None for anonymous)."""

    def __init__(
        self,
        url: str,
        keys: dict[str, str | None],
        examples: int = 20,
        shrink: bool = False,
        exclude: Iterable[str] = (),
        protected_names: Iterable[str] = (),
        timeout: float = 60.0,
    ):
        self.base = url.rstrip("/") + "/"  # .../MAAS/
        self.keys = keys
        self.examples = examples
        self.shrink = shrink
        self.exclude = set(exclude)
        self.protected = set(protected_names)  # usernames etc. the walk must not delete
        self.timeout = timeout
        self.http = httpx.Client(timeout=timeout)
        self.headers = {
            who: ({"Authorization": oauth_header(key, self.base + API)} if key else {}) for who, key in keys.items()
        }
        self.failures: list[Failure] = []
        self.requests = 0
        self.known: dict[str, list[str]] = {}
        self.actions: list[Action] = []  # set from describe/ by the caller (walk(fuzzer.description()))
        self.seconds: dict[str, float] = {}  # time spent per walk key
        self.statuses: Counter[int] = Counter()
        self.succeeded: set[str] = set()  # actions that answered 2xx at least once: the walk got past validation

    def close(self) -> None:
        self.http.close()

    # -- sending ------------------------------------------------------------------------------

    def send(self, sent: Sent, api: bool = True) -> httpx.Response | None:
        self.requests += 1
        headers = {k: v.encode("latin-1") for k, v in sent.headers.items()}
        response = None
        for attempt in range(2):
            try:
                response = self.http.request(sent.method, sent.url, headers=headers, content=sent.body)
                break
            except (httpx.LocalProtocolError, httpx.InvalidURL):
                # HTTP itself (a raw DEL in a header) or the client (a URL past httpx's 64 KiB)
                # cannot carry it: nothing reached the region
                return None
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
                if len(sent.body) > BODY_LIMIT:
                    return None  # refused before it was read (413, then the connection closed under the sender)
                # A kept-alive connection the region closed after an earlier early refusal: try a new one.
                self.http.close()
                self.http = httpx.Client(timeout=self.timeout)
                if attempt:
                    self.failures.append(Failure(f"no answer ({type(exc).__name__}: {exc})", sent, 0, ""))
                    return None
            except httpx.HTTPError as exc:
                self.failures.append(Failure(f"no answer ({type(exc).__name__}: {exc})", sent, 0, ""))
                return None
        assert response is not None
        self.statuses[response.status_code] += 1
        if response.is_success and sent.key:
            self.succeeded.add(sent.key)
        problem = judge(sent, response, api)
        if problem:
            self.failures.append(Failure(problem, sent, response.status_code, response.text))
        return response

    def description(self) -> dict[str, Any]:
        return self.http.get(self.base + API + "describe/").json()

    # -- what exists --------------------------------------------------------------------------

    def collect_known(self, actions: list[Action], refresh: bool = False) -> None:
        """Existing ids, names and system_ids, by the collection a URI parameter indexes."""
        admin = self.headers.get("admin", {})
        if refresh:
            self.known.clear()
        for action in actions:
            for param in action.uri_params:
                prefix = action.path.split("{" + param + "}")[0]
                if prefix in self.known:
                    continue
                values: list[str] = []
                try:
                    listed = self.http.get(
                        self.base + API + prefix.format(**self._first_known(prefix)), headers=admin
                    ).json()
                except (ValueError, KeyError, httpx.HTTPError):
                    listed = []
                for item in listed if isinstance(listed, list) else []:
                    if isinstance(item, dict):
                        for key in ("system_id", "username", "id", "name", "vid", "cidr"):
                            if key in item and item[key] is not None:
                                values.append(str(item[key]))
                self.known[prefix] = [v for v in dict.fromkeys(values) if v not in self.protected]

    def _first_known(self, prefix: str) -> dict[str, str]:
        out = {}
        for param in re.findall(r"{(\w+)}", prefix):
            head = prefix.split("{" + param + "}")[0]
            out[param] = (self.known.get(head) or ["0"])[0]
        return out

    # -- strategies ---------------------------------------------------------------------------

    def value(self, name: str, kind: str) -> st.SearchStrategy[str]:
        """What a client could put in parameter `name` of documented type `kind`."""
        known = [v for values in self.known.values() for v in values][:200]
        lname, lkind = name.lower(), kind.lower()
        likely: list[st.SearchStrategy[str]] = []
        if "ip" in lname.split("_") or lname.endswith("_ip") or lname in ("ip", "gateway_ip", "dns_servers"):
            likely.append(IPV4)
            networks = [n for n in known if re.fullmatch(r"\d+\.\d+\.\d+\.0/24", n)]
            if networks:  # an address inside a subnet that exists
                likely.append(
                    st.builds(
                        lambda n, host: n.rsplit(".", 1)[0] + f".{host}", st.sampled_from(networks), st.integers(1, 254)
                    )
                )
            # an IPv6 address with a zone id inside a subnet that exists: Python's ipaddress takes
            # it, PostgreSQL's inet does not (issue 11), and a subnet check alone lets it through
            networks6 = [n for n in known if re.fullmatch(r"[0-9a-f:]+::/64", n)] or ["fe80::/64"]
            likely.append(
                st.builds(
                    lambda n, host: n.split("::")[0] + f"::{host:x}%eth0",
                    st.sampled_from(networks6),
                    st.integers(1, 0xFFFF),
                )
            )
        if lname in ("name", "value"):
            likely.append(st.sampled_from(SETTING_NAMES))
        if lname == "type":
            likely.append(st.sampled_from(["dynamic", "reserved", "synced", "uploaded"]))
        if "cidr" in lname or lname == "subnet":
            likely.append(CIDRS)
        if "mac" in lname:
            likely.append(MACS)
        if lkind in ("int", "integer") or lname in ("vid", "mtu", "id", "size", "timeout", "rdns_mode"):
            likely.append(INTS.map(str))
        if lkind in ("bool", "boolean"):
            likely.append(st.sampled_from(["true", "false", "1", "0", "yes", "maybe"]))
        if known:
            likely.append(st.sampled_from(known))
        likely.append(NAME)
        return st.one_of(
            st.one_of(*likely),
            st.sampled_from(GARBAGE),
            st.text(max_size=30),
        )

    def uri_value(self, action: Action, param: str) -> st.SearchStrategy[str]:
        prefix = action.path.split("{" + param + "}")[0]
        known = self.known.get(prefix) or []
        garbage = [g[:MAX_QUERY_VALUE] for g in GARBAGE if g and "/" not in g]
        choices = [st.sampled_from(garbage), st.text(min_size=1, max_size=20)]
        if known:
            choices = [st.sampled_from(known)] * 3 + choices
        return st.one_of(*choices)

    def params_for(self, action: Action) -> st.SearchStrategy[list[tuple[str, Any]]]:
        def one(name_kind: tuple[str, str]) -> st.SearchStrategy[list[tuple[str, Any]]]:
            name, kind = name_kind
            value = self.value(name, kind)
            if kind == "file":
                value = st.one_of(value, st.binary(max_size=64))
            absent, single = st.just([]), value.map(lambda v: [(name, v)])
            several = st.lists(value, min_size=2, max_size=4).map(lambda vs: [(name, v) for v in vs])
            over_limit = st.just([(name, "1")] * 1100)  # more values than a list may have (rare: costly)
            return st.one_of(*[absent] * 6, *[single] * 8, *[several] * 2, over_limit)

        per_param = [one(p) for p in action.params]
        extra = st.lists(st.tuples(NAME, st.sampled_from(GARBAGE)), max_size=2)  # parameters nobody declared
        return st.tuples(st.tuples(*per_param) if per_param else st.just(()), extra).map(
            lambda t: [pair for group in t[0] for pair in group] + t[1]
        )

    def request(self, action: Action, who: str) -> st.SearchStrategy[Sent]:
        uri = st.fixed_dictionaries({p: self.uri_value(action, p) for p in action.uri_params})
        encoding = st.sampled_from(["multipart", "plain-multipart", "urlencoded", "json"])
        return st.builds(lambda u, ps, enc: self.build(action, who, u, ps, enc), uri, self.params_for(action), encoding)

    # -- building requests --------------------------------------------------------------------

    def url(self, action: Action, uri: dict[str, str], query: list[tuple[str, Any]]) -> str:
        path = action.path.format(**{k: quote(v, safe="") for k, v in uri.items()})
        url = self.base + API + path
        if query:
            url += "?" + urlencode([(k, v if isinstance(v, str) else v.decode("latin-1")) for k, v in query])
        return url

    def build(
        self, action: Action, who: str, uri: dict[str, str], params: list[tuple[str, Any]], encoding: str
    ) -> Sent:
        headers = dict(self.headers[who])
        query: list[tuple[str, Any]] = [("op", action.op)] if action.op else []
        body = b""
        if action.method in ("GET", "DELETE") or not params:
            params = [
                (k, v[:MAX_QUERY_VALUE] if isinstance(v, str) else v[:MAX_QUERY_VALUE].decode("latin-1"))
                for k, v in params
            ]
            query += params
            encoding = "query"
        elif encoding == "multipart":
            headers["Content-Type"], body = base64_multipart(params)
        elif encoding == "plain-multipart":
            headers["Content-Type"], body = plain_multipart(params)
        elif encoding == "urlencoded":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode([(k, v) for k, v in params]).encode()
        else:
            headers["Content-Type"] = "application/json"
            grouped: dict[str, Any] = {}
            for k, v in params:
                value = v if isinstance(v, str) else base64.b64encode(v).decode()
                grouped.setdefault(k, []).append(value)
            body = json.dumps({k: vs[0] if len(vs) == 1 else vs for k, vs in grouped.items()}).encode()
        note = f"{action.key} as {who}, {encoding}"
        return Sent(
            action.method,
            self.url(action, uri, query),
            headers,
            body,
            params,
            note,
            frozenset(n for n, _ in action.params),
            action.key,
        )

    # -- walks --------------------------------------------------------------------------------

    def _run(
        self,
        key: str,
        strategy: st.SearchStrategy[Sent],
        examples: int,
        api: bool = True,
        send: Callable[[Sent], Any] | None = None,
    ) -> None:
        send = send or (lambda s: self.send(s, api))
        phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if self.shrink else [])

        @seed(zlib.crc32(key.encode()) ^ SEED_SALT)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=phases,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(strategy)
        def check(sent: Sent) -> None:
            before = len(self.failures)
            send(sent)
            if self.shrink and len(self.failures) > before:
                raise AssertionError(str(self.failures[-1]))

        start = time.monotonic()
        try:
            check()
        except AssertionError:
            pass  # recorded in self.failures (shrinking ends on the smallest example it found)
        self.seconds[key] = time.monotonic() - start

    def walk_actions(self, actions: list[Action], who: str, examples: int | None = None) -> None:
        """Every action as `who`; deletions last, so the reads and updates find what exists."""
        self.collect_known(actions, refresh=True)
        for action in sorted(actions, key=lambda a: a.method == "DELETE"):
            if action.key in self.exclude or (action.anon and who != "anonymous"):
                continue
            if not action.anon and who == "anonymous":
                n = min(3, examples or self.examples)  # every one is a 401; a few suffice
            else:
                n = examples or self.examples
            self._run(f"{action.key} {who}", self.request(action, who), n)

    def walk_bodies(self, paths: list[tuple[str, str]], examples: int) -> None:
        """Broken bodies, anonymous and signed: 400 or 413 before anything else, never 5xx."""
        bodies = st.one_of(
            st.sampled_from(
                [
                    b"{not json",
                    b"[1,2]",
                    b'{"name": "\\ud800"}',
                    b'{"name": NaN}',
                    b"\xff\xfe\x00",
                    b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--x--\r\n',
                    b"x" * (3 * 1024 * 1024),
                ]
            ),
            st.binary(max_size=200),
        )
        content_types = st.sampled_from(
            [
                "application/json",
                "multipart/form-data",
                "multipart/form-data; boundary=x",
                'multipart/form-data; boundary="x"',
                "application/x-www-form-urlencoded",
                "text/plain",
                "",
                "application/json; charset=x-nope",
                "multipart/form-data; boundary=x; charset=x-nope",
            ]
        )
        charset_part = st.builds(
            lambda cs, enc, val: (
                "multipart/form-data; boundary=B",
                (
                    f'--B\r\nContent-Disposition: form-data; name="name"\r\nContent-Type: text/plain; charset={cs}\r\n'
                    f"{'Content-Transfer-Encoding: ' + enc + chr(13) + chr(10) if enc else ''}\r\n"
                ).encode()
                + val
                + b"\r\n--B--\r\n",
            ),
            st.sampled_from(["x-nope", "utf-8", "latin-1", "utf-16", "\x00"]),
            st.sampled_from(["", "base64", "quoted-printable", "x-bogus"]),
            st.binary(max_size=40),
        )

        def sent(method_path: tuple[str, str], who: str, ct_body: tuple[str, bytes]) -> Sent:
            method, path = method_path
            headers = {**self.headers[who], **({"Content-Type": ct_body[0]} if ct_body[0] else {})}
            return Sent(method, self.base + API + path, headers, ct_body[1], [], f"broken body as {who}")

        ct_bodies = st.one_of(st.tuples(content_types, bodies), charset_part)
        self._run(
            "bodies", st.builds(sent, st.sampled_from(paths), st.sampled_from(list(self.headers)), ct_bodies), examples
        )

    def walk_oauth(self, examples: int) -> None:
        """Authorization headers of every kind of wrong: 401 or 400, never 5xx."""
        key = next((k for k in self.keys.values() if k), "a:b:c")
        consumer, token, secret = key.split(":")
        piece = st.one_of(
            st.sampled_from(["%00", "", "%", "%zz", "\x7f", "x" * 5000, "ü", '"', consumer, token, "&" + secret]),
            st.text(max_size=20).map(quote),
        )
        fields = st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "oauth_consumer_key",
                        "oauth_token",
                        "oauth_signature",
                        "oauth_signature_method",
                        "oauth_version",
                        "realm",
                        "x",
                    ]
                ),
                piece,
            ),
            max_size=7,
        )

        def header(pairs: list[tuple[str, str]], method: str) -> Sent:
            text = "OAuth " + ", ".join(f'{k}="{v}"' for k, v in pairs + [("oauth_signature_method", method)])
            value = text.encode("utf-8").decode("latin-1")  # raw bytes on the wire, as a client may send
            return Sent(
                "GET", self.base + API + "users/?op=whoami", {"Authorization": value}, b"", [], "OAuth header garbage"
            )

        strategy = st.one_of(
            st.builds(header, fields, st.sampled_from(["PLAINTEXT", "HMAC-SHA1", "", "%00"])),
            st.sampled_from(
                ["OAuth", "OAuth ,,,", 'OAuth oauth_token="%00"', "OAuth =", "Bearer x", "OAuth x" * 3000]
            ).map(
                lambda h: Sent(
                    "GET", self.base + API + "users/?op=whoami", {"Authorization": h}, b"", [], "OAuth header garbage"
                )
            ),
        )
        self._run("oauth", strategy, examples)

    def walk_metadata(self, token: str | None, examples: int) -> None:
        """The metadata API the ephemeral image talks to: JSON of every shape, tokens right and wrong."""
        base = self.base + "metadata/"
        keys = st.sampled_from(
            [
                "mac_addresses",
                "architecture",
                "boot_method",
                "cpu_count",
                "memory_mib",
                "result",
                "failed_scripts",
                "disks",
                "x",
            ]
        )

        def nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
            return st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5))

        json_values = st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.sampled_from(GARBAGE), MACS),
            nested,
            max_leaves=12,
        )
        bodies = st.one_of(
            json_values.map(lambda v: json.dumps(v).encode()),
            st.sampled_from(
                [
                    b"{not json",
                    b"\xff",
                    b'{"mac_addresses": "\\ud800"}',
                    b'{"cpu_count": NaN}',
                    b'{"mac_addresses": [1]}',
                    b"5",
                ]
            ),
            st.binary(max_size=100),
        )
        tokens = st.sampled_from([t for t in (token, "nope", "%00", "x" * 5000, "") if t is not None])
        routes = st.sampled_from(
            [
                ("POST", "enlist"),
                ("POST", "commission/facts"),
                ("GET", "commission/scripts"),
                ("GET", "commission/scripts/x"),
                ("POST", "commission/scripts/x?exit_status=1"),
                ("POST", "commission/scripts/%00?exit_status=99999999999"),
                ("POST", "commission/scripts/y?exit_status=x"),
                ("POST", "commission/done"),
            ]
        )

        def sent(route: tuple[str, str], tok: str, body: bytes) -> Sent:
            method, path = route
            headers = {"Authorization": f"Token {tok}"} if tok else {}
            return Sent(method, base + path, headers, body if method == "POST" else b"", [("body", "")], "metadata API")

        self._run("metadata", st.builds(sent, routes, tokens, bodies), examples, api=False)

    def slowest(self, n: int = 10) -> str:
        return ", ".join(f"{k}: {v:.1f}s" for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])[:n])

    def report(self) -> str:
        lines = [
            f"{len(self.failures)} failing requests of {self.requests} sent; answers: "
            f"{dict(sorted(self.statuses.items()))}; slowest: {self.slowest()}"
        ]
        seen: set[tuple[str, str]] = set()
        for failure in self.failures:
            key = (failure.problem, failure.sent.note)
            if key in seen:
                continue
            seen.add(key)
            lines.append(str(failure))
        return "\n\n".join(lines)


def base64_multipart(fields: list[tuple[str, Any]]) -> tuple[str, bytes]:
    """As maascli and python-libmaas send: every part base64, UTF-8 text or a file."""
    boundary = "===============fuzz7d9c=="
    out = b""
    for name, value in fields:
        data = value if isinstance(value, bytes) else value.encode("utf-8")
        kind = "application/octet-stream" if isinstance(value, bytes) else 'text/plain; charset="utf-8"'
        filename = '; filename="f"' if isinstance(value, bytes) else ""
        out += (
            (
                f"--{boundary}\r\nContent-Type: {kind}\r\nMIME-Version: 1.0\r\n"
                f"Content-Transfer-Encoding: base64\r\n"
                f'Content-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
            ).encode()
            + base64.encodebytes(data)
            + b"\r\n"
        )
    return f'multipart/form-data; boundary="{boundary}"', out + f"--{boundary}--\r\n".encode()


def seed_region(config: Any, url: str, admin_key: str) -> str:
    """Something of each kind for a walk to find by id (a rack controller node without a
    rack process: nothing serves DHCP for real), and a commissioning machine whose
    metadata token the metadata walk uses, which it returns."""
    from datetime import timedelta

    from metalplane.client.http import MaasHttp
    from metalplane.identity import new_system_id
    from metalplane.region.bootstrap import run_db
    from metalplane.region.services import commissioning, racks

    with MaasHttp(url, admin_key) as api:
        fabric = api.post("fabrics/", name="fuzz-fabric").json()
        api.post(f"fabrics/{fabric['id']}/vlans/", vid=42, name="fuzz-vlan")
        subnet = api.post(
            "subnets/", cidr="10.251.0.0/24", vlan=fabric["vlans"][0]["id"], gateway_ip="10.251.0.1"
        ).json()
        api.post("ipranges/", type="reserved", subnet=subnet["id"], start_ip="10.251.0.10", end_ip="10.251.0.20")
        api.post("subnets/", cidr="fd0f:251::/64", vlan=fabric["vlans"][0]["id"])
        api.post("spaces/", name="fuzz-space")
        api.post("zones/", name="fuzz-zone")
        api.post(
            "machines/",
            hostname="fuzz-machine",
            architecture="amd64/generic",
            mac_addresses="52:54:00:fa:00:02",
            power_type="manual",
        )
        api.post("commissioning-scripts/", name="fuzz-script", content="#!/bin/sh\ntrue\n")
        api.post("users/", username="fuzz-other", password="pw", email="other@example.com")
        api.post("boot-resources/", name="custom/fuzz", architecture="amd64/generic", sha256="0" * 64, size="1")
        machine = api.post(
            "machines/",
            hostname="fuzz-commissioning",
            architecture="amd64/generic",
            mac_addresses="52:54:00:fa:00:01",
            power_type="manual",
            commission="false",
        ).json()

    async def prepare(conn) -> str:
        await racks.register_rack(
            conn,
            new_system_id(),
            "fuzz-rack",
            "0.1.0",
            [{"name": "eth0", "mac": "52:54:00:fa:00:09", "addresses": ["10.251.0.5/24"]}],
        )
        found = await commissioning.start(conn, machine["system_id"], timedelta(hours=1))
        return await commissioning.token_for(conn, found["id"])

    return run_db(config, prepare)


def plain_multipart(fields: list[tuple[str, Any]]) -> tuple[str, bytes]:
    """The 2.0-era apiclient encoding: raw UTF-8 parts, no transfer encoding."""
    boundary = "fuzz-boundary-7d9c"
    out = b""
    for name, value in fields:
        data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        filename = '; filename="f"' if isinstance(value, bytes) else ""
        out += (
            (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n').encode()
            + data
            + b"\r\n"
        )
    return f"multipart/form-data; boundary={boundary}", out + f"--{boundary}--\r\n".encode()


def timed(run: Callable[[], None]) -> float:
    start = time.monotonic()
    run()
    return time.monotonic() - start
