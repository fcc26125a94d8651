"""`metalplane images ...`: build boot images offline and hand them to a region."""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metalplane.cli.errors import CliError
from metalplane.cli.groups import command_group
from metalplane.cli.progress import Progress

UPLOAD_PIECE = 4 << 20  # as maascli uploads


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def upload_build(profile_name: str, result, log: Callable[[str], None] = _log) -> int:
    """Upload a built image to the region of a `metalplane login` profile: one set, both files."""
    import httpx

    from metalplane.cli.profiles import ProfileStore, api_key
    from metalplane.client.http import MaasHttp, oauth_header

    profile = ProfileStore().get(profile_name)
    if profile is None:
        raise CliError(f"no profile {profile_name!r}: run `metalplane login {profile_name} URL KEY` first")
    key = api_key(profile)
    if not key:
        raise CliError(f"profile {profile_name!r} is anonymous; uploading needs an admin's API key")
    resource_id = None
    with MaasHttp(profile["url"], key, timeout=120) as api:
        site = api.root.split("/MAAS/")[0]
        for f in sorted(result.files, key=lambda f: f.ftype != "boot-kernel"):
            try:
                response = api.post(
                    "boot-resources/",
                    name=result.name,
                    architecture=result.architecture,
                    filetype=f.ftype,
                    sha256=f.sha256,
                    size=str(f.size),
                    version=result.version,
                    title=f"metalplane {result.name} (kernel {result.kernel_release})",
                )
            except httpx.HTTPError as exc:
                raise CliError(f"cannot reach {profile['url']}: {exc}") from None
            if response.status_code != 201:
                raise CliError(f"boot-resources create {f.ftype}: {response.status_code} {response.text}")
            body = response.json()
            resource_id = body["id"]
            rfile = body["sets"][result.version]["files"][f.ftype]
            if rfile["complete"]:
                log(f"{f.ftype}: already stored on the region")
                continue
            url = site + rfile["upload_uri"]
            sent = 0
            progress = Progress(f.size, bytes_=True, out=sys.stderr)
            progress.update(0, f"uploading {f.ftype}")
            with open(result.out / f.path, "rb") as data:
                while piece := data.read(UPLOAD_PIECE):
                    put = api.http.put(
                        url,
                        content=piece,
                        headers={"Content-Type": "application/octet-stream", "Authorization": oauth_header(key, url)},
                    )
                    if put.status_code != 200:
                        progress.finish()
                        raise CliError(f"upload of {f.ftype} failed at byte {sent}: {put.status_code} {put.text}")
                    sent += len(piece)
                    progress.update(sent)
            progress.finish()
            log(f"{f.ftype}: uploaded {sent} bytes")
    log(
        f"uploaded {result.name} {result.architecture} version {result.version} "
        f"as boot resource {resource_id} ({profile['url']})"
    )
    return 0


def _build(args: argparse.Namespace, builder: Callable[..., Any], **options: Any) -> Any:
    """Run an image builder with the options every build takes (--out, --release, --cache-dir,
    --version); a build that fails is the command's error."""
    from metalplane.images.build import BuildError

    try:
        return builder(args.out.resolve(), release=args.release, cache=args.cache_dir, version=args.version, **options)
    except BuildError as exc:
        raise CliError(str(exc)) from None


def _print_files(files: list) -> None:
    for f in files:
        print(f"  {f.ftype:12} {f.size:>10}  sha256 {f.sha256}  {f.path}")


def _print_import_hint(out: Path) -> None:
    print("import it into a region (on the region's host, or serve the directory over HTTP):")
    print(f"  metalplane PROFILE boot-resources import path={shlex.quote(str(out))}")


def _build_ephemeral(args: argparse.Namespace) -> int:
    """build the ephemeral (enlist/commission) image offline, as a simplestreams mirror

    Build a kernel + initramfs that enlists or commissions a machine: the Debian kernel from a
    linux-image .deb (never installed), busybox-static, metalplane's /init and the kernel modules
    for common NICs and disks. The output is a simplestreams mirror directory the region imports
    (boot-resources import)."""
    from metalplane.images.build import BUILD_STEPS, build_ephemeral, qemu_command

    if args.kernel_deb and args.kernel_package:
        raise CliError("give --kernel-deb or --kernel-package, not both")
    progress = Progress(BUILD_STEPS, steps=True, out=sys.stderr)
    try:
        result = _build(
            args,
            build_ephemeral,
            kernel_deb=args.kernel_deb,
            kernel_package_name=args.kernel_package,
            busybox=args.busybox,
            extra_modules=args.module or (),
            log=progress.say,
            step=progress.step,
        )
    finally:
        progress.finish()
    out = result.out
    print(f"built {result.name} {result.architecture} version {result.version} in {out}")
    print(
        f"  kernel {result.kernel_release} (from {result.kernel_package}); "
        f"modules: {' '.join(m.removesuffix('.ko') for m in result.modules) or 'none'}"
    )
    if result.missing_modules:
        print(f"  not in this kernel (skipped): {' '.join(result.missing_modules)}")
    _print_files(sorted(result.files, key=lambda f: f.ftype != "boot-kernel"))
    print(f"  stream index: {out / 'streams/v1/index.json'}")
    _print_import_hint(out)
    print("  metalplane PROFILE boot-resources import url=http://HOST/PATH/")
    append = "console=ttyS0 mp_mode=enlist metadata_url=http://10.0.2.2:5240/MAAS/metadata/"
    print("try it (on qemu's user network 10.0.2.2 is this host; add -nic none to see the no-network path):")
    print("  " + shlex.join(qemu_command(result.path("boot-kernel"), result.path("boot-initrd"), append)))
    return upload_build(args.import_into, result) if args.import_into else 0


def _build_debian(args: argparse.Namespace) -> int:
    """build a deployable Debian root image with debootstrap, as a simplestreams mirror

    Build a Debian root image (root-tgz) that machines are deployed with: debootstrap from the
    mirror this host's apt sources name, minbase plus the kernel, systemd-networkd, openssh-server,
    GRUB and metalplane's first-boot agent (runs user_data, reports deployed). Downloads are cached;
    the output is a simplestreams mirror directory the region imports (boot-resources import).
    Needs root."""
    from metalplane.images.debian import build_debian

    result = _build(
        args,
        build_debian,
        mirror=args.mirror,
        kernel=args.kernel,
        extra_packages=args.package or (),
        lean=not args.full,
        log=_log,
    )
    print(
        f"built {result.name} {result.architecture} version {result.version} in {result.out} "
        f"({result.seconds:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items()) + ")"
    )
    print(
        f"  {result.packages} packages from {result.mirror}; kernel {result.kernel_release}; "
        f"root {result.root_bytes / 1e6:.0f} MB unpacked"
    )
    _print_files(sorted(result.files, key=lambda f: f.ftype))
    _print_import_hint(result.out)
    return upload_build(args.import_into, result) if args.import_into else 0


def _build_command(
    commands: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """`images NAME`, with the options every image build takes (`_build`): --cache-dir, --out,
    --version and --import-into. `run`'s docstring says what it does: its first line is the
    help, the rest the description."""
    summary, _, details = inspect.cleandoc(run.__doc__ or "").partition("\n\n")
    parser = commands.add_parser(name, help=summary, description=details)
    parser.set_defaults(func=run)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where downloads are kept (default $METALPLANE_CACHE_DIR or /var/cache/metalplane)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("metalplane-images"),
        metavar="DIR",
        help="the mirror directory to add the image to (default ./metalplane-images)",
    )
    parser.add_argument("--version", help="the image version (default: UTC YYYYMMDD.HHMMSS)")
    parser.add_argument(
        "--import-into",
        metavar="PROFILE",
        help="also upload the image to the region of this `metalplane login` profile",
    )
    return parser


def register(sub: argparse._SubParsersAction) -> None:
    commands = command_group(sub, "images", "build boot images")
    _add_build_ephemeral(commands)
    _add_build_debian(commands)


def _add_build_ephemeral(commands: argparse._SubParsersAction) -> None:
    p = _build_command(commands, "build-ephemeral", _build_ephemeral)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--kernel-deb", type=Path, metavar="FILE", help="a linux-image-*-amd64 .deb to use")
    source.add_argument(
        "--download", action="store_true", help="fetch the kernel .deb with apt-get download (the default; cached)"
    )
    p.add_argument(
        "--kernel-package",
        metavar="NAME",
        help="the kernel package to download (default: what linux-image-amd64 depends on)",
    )
    p.add_argument(
        "--busybox",
        type=Path,
        metavar="FILE",
        help="a static busybox (default: the host's if static, else busybox-static's .deb)",
    )
    p.add_argument("--release", help="the image's release name (default: this host's codename)")
    p.add_argument(
        "--module", action="append", metavar="NAME", help="another kernel module to include and load (repeatable)"
    )


def _add_build_debian(commands: argparse._SubParsersAction) -> None:
    d = _build_command(commands, "build-debian", _build_debian)
    d.add_argument("--release", default="bookworm", help="the Debian release (default bookworm)")
    d.add_argument(
        "--kernel",
        default="linux-image-amd64",
        metavar="PACKAGE",
        help="the kernel package (default linux-image-amd64; linux-image-cloud-amd64 is Debian's "
        "smaller kernel for virtual machines)",
    )
    d.add_argument(
        "--mirror", metavar="URL", help="the Debian archive to use (default: the one this host's apt sources name)"
    )
    d.add_argument("--package", action="append", metavar="NAME", help="another package to install (repeatable)")
    d.add_argument(
        "--full",
        action="store_true",
        help="keep docs, man pages, locales and every kernel module (default: the lean variant)",
    )
