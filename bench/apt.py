"""System tools the benchmarks drive (wrk, Kannel), installed with apt-get when missing, as
scripts/bootstrap.sh's ``ensure_apt`` does (as root, or through sudo)."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_apt(package: str, *commands: str) -> None:
    """Install the Debian package ``package`` unless every one of ``commands`` is on the PATH."""
    if all(shutil.which(command) for command in commands):
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(f"{package} is missing and there is no apt-get to install it: install `{package}`")
    root: list[str] = [] if os.geteuid() == 0 else ["sudo"]
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing system package {package}")
    subprocess.run([*root, "apt-get", "update", "-qq"], check=True, env=environment)
    subprocess.run(
        [*root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", package],
        check=True,
        stdout=subprocess.DEVNULL,
    )
