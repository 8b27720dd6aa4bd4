"""Generate the ``siogw_api.v1`` Python package (protobuf + gRPC stubs) from ``protos/``.

Run ``python protos/generate.py`` (or ``make protos``). The ``.proto`` files live at
``protos/siogw_api/v1/`` so that the generated modules import each other as
``siogw_api.v1`` with no rewriting; the protobuf package (the wire name of every
service, ``siogw.v1``) is independent of that path. Output is deterministic; a test
regenerates into a temporary directory and fails when the committed code is stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
#: Where the generated package ``siogw_api.v1`` is written (``siogw_api/v1/``).
OUT_ROOT = ROOT
GENERATED_PACKAGE = Path("siogw_api") / "v1"

_INIT = '"""Generated from protos/siogw_api/v1 by protos/generate.py: do not edit."""\n'


def proto_files(proto_dir: Path = PROTO_DIR) -> list[Path]:
    return sorted(proto_dir.rglob("*.proto"))


def generate(out_root: Path = OUT_ROOT, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Regenerate ``siogw_api/v1`` under ``out_root`` (that folder is replaced wholesale).

    Returns the files written.
    """
    from grpc_tools import protoc  # heavy import: only when generating

    include = str(resources.files("grpc_tools") / "_proto")
    out_dir = out_root / GENERATED_PACKAGE
    with tempfile.TemporaryDirectory() as tmp:
        tmp_out = Path(tmp)
        args = [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{include}",
            f"--python_out={tmp_out}",
            f"--pyi_out={tmp_out}",
            f"--grpc_python_out={tmp_out}",
            *[str(p.relative_to(proto_dir)) for p in proto_files(proto_dir)],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        written: list[Path] = []
        for src in sorted((tmp_out / GENERATED_PACKAGE).glob("*.py*")):
            dst = out_dir / src.name
            shutil.copyfile(src, dst)
            written.append(dst)
        init = out_dir / "__init__.py"
        init.write_text(_INIT)
        written.append(init)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_ROOT,
                        help="the folder that receives siogw_api/v1 (default: the checkout)")
    args = parser.parse_args(argv)
    files = generate(args.out)
    print(f"generated {len(files)} files into {args.out / GENERATED_PACKAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
