"""Builds ``frames.c`` into ``gameserver.web._frames`` (a hatchling build hook).

The extension is optional: without a C compiler or Python's headers the wheel is
built without it, with a warning, and the server splits frames with aiohttp's
parser alone (``aiohttp_seam.py``): the same behaviour, about 0.6 us more CPU per
message. ``GAMESERVER_PURE_PYTHON=1`` builds without it on purpose;
``GAMESERVER_REQUIRE_EXTENSION=1`` makes a failed compile fail the build (CI).

An editable install (``pip install -e .``) compiles it into the source tree, next to
this file, where the tests import it from.

setuptools does the compiling: it knows each platform's compiler and flags.
Not shipped in the wheel (pyproject.toml excludes it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "gameserver/web/frames.c"
MODULE = "gameserver.web._frames"


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def compile_extension(root: Path, out: Path) -> Path:
    """Compile the extension under ``out``; the path of the built module."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    source = root / SOURCE
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    extension = Extension(MODULE, [str(source)], extra_compile_args=["-O2"],
                          define_macros=[("SOURCE_SHA256", f'"{digest}"')])
    command = build_ext(Distribution({"name": "gameserver", "ext_modules": [extension]}))
    command.build_lib = str(out)
    command.build_temp = str(out / "temp")
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath(MODULE))


class FramesBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or _flag("GAMESERVER_PURE_PYTHON"):
            return
        self._out = Path(tempfile.mkdtemp(prefix="gameserver-frames-"))
        try:
            built = compile_extension(Path(self.root), self._out)
        except Exception as exc:
            if _flag("GAMESERVER_REQUIRE_EXTENSION"):
                raise
            self.app.display_warning(
                f"gameserver: building without the C frame splitter ({exc}); the server "
                "works the same, using a little more CPU. Install a C compiler and "
                "Python's headers (Debian: gcc python3-dev) to build it.")
            return
        target = f"gameserver/web/{built.name}"
        if version == "editable":  # imported from the source tree
            shutil.copy2(built, Path(self.root) / target)
        else:
            build_data["force_include"][str(built)] = target
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact: str) -> None:
        out = getattr(self, "_out", None)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
