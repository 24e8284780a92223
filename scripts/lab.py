"""JupyterLab on the project's venv: the `workbench` kernel and the server command `make lab` runs.

    python scripts/lab.py kernel [--prefix DIR]   register (or refresh) the `workbench` kernel spec
    python scripts/lab.py serve [--port N]        start JupyterLab on 127.0.0.1 (what `make lab` runs)

The kernel's interpreter is this Python (the venv's) and its environment carries WORKBENCH_HOME and
WORKBENCH_MODELS_DIR as this user resolves them now (set, or the defaults), so a notebook opened from any
folder reads the same store and weights as the CLI. Installing again overwrites the spec: idempotent.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KERNEL = "workbench"
DISPLAY = "Python (workbench)"


def kernel_env() -> dict[str, str]:
    """The variables the kernel must share with the user's shell: the resolved home and weights folder."""
    from workbench.config import get_settings

    settings = get_settings()
    return {"WORKBENCH_HOME": str(Path(settings.home).resolve()),
            "WORKBENCH_MODELS_DIR": str(Path(settings.models_dir).resolve())}


def install_kernel(prefix: str) -> Path:
    """The `workbench` kernel spec under PREFIX/share/jupyter/kernels (PREFIX: the venv by default)."""
    from ipykernel.kernelspec import install

    path = install(kernel_name=KERNEL, display_name=DISPLAY, prefix=prefix, env=kernel_env())
    return Path(path)


def lab_command(port: int, root_dir: Path) -> list[str]:
    """JupyterLab bound to 127.0.0.1, no browser (a headless machine has none): it prints its URL and token."""
    command = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--ServerApp.root_dir={root_dir}",
               "--ServerApp.port_retries=0", f"--MultiKernelManager.default_kernel_name={KERNEL}"]
    if os.geteuid() == 0:  # Jupyter refuses root without it (containers and CI run as root)
        command.append("--allow-root")
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    kernel = sub.add_parser("kernel", help="register the workbench kernel spec")
    kernel.add_argument("--prefix", default=sys.prefix, help="install prefix (default: this venv)")
    serve = sub.add_parser("serve", help="start JupyterLab (its log prints the URL with the token)")
    serve.add_argument("--port", type=int, default=8888)
    serve.add_argument("--root-dir", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    if args.what == "kernel":
        path = install_kernel(args.prefix)
        env = kernel_env()
        print(f"kernel {KERNEL!r} ({sys.executable}) at {path}; WORKBENCH_HOME={env['WORKBENCH_HOME']}")
        return 0
    command = lab_command(args.port, args.root_dir.resolve())
    print(shlex.join(command), flush=True)
    os.execv(command[0], command)  # JupyterLab in this process: Ctrl-C stops it as make's child
    return 1


if __name__ == "__main__":
    sys.exit(main())
