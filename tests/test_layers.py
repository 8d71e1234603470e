"""The layers' import direction (a static scan of every module) and import cost
(what an import loads, in a fresh interpreter).

core (pure) <- host (asyncio) <- web (aiohttp) <- cluster (Redis, --workers);
games use only the public API; the client (``gameserver.client``) stands beside
the server, on core and aiohttp's client alone. A game module or a tool that imports
``gameserver`` for ``Room`` must not pay for the web server, and a plain server
must not load the cluster's Redis client.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from gameserver.web import aiohttp_seam

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gameserver"
THIRD_PARTY_IO = ("aiohttp", "uvloop", "redis", "prometheus_client")


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, dotted
    name: str  # the imported module, absolute and dotted
    line: int
    in_function: bool  # runs only when the function is called
    type_checking: bool  # under ``if TYPE_CHECKING:``: never at run time

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.name}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    importer = _module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            function = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            guarded = type_checking or (isinstance(child, ast.If)
                                        and "TYPE_CHECKING" in ast.unparse(child.test))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolved against the importer's package
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from gameserver.web import admin`` imports gameserver.web.admin
                names = [f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base
                         for alias in child.names]
            found.extend(Import(importer, name, child.lineno, function, guarded)
                         for name in names)
            visit(child, function, guarded)

    visit(ast.parse(path.read_text(), str(path)), False, False)
    return found


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return ((ROOT / relative).with_suffix(".py").exists()
            or (ROOT / relative / "__init__.py").exists())


MODULES = sorted(PACKAGE.rglob("*.py"))
IMPORTS = [imp for path in MODULES for imp in _imports(path)]


def _within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _layer(importer: str) -> str:
    parts = importer.split(".")
    return parts[1] if len(parts) > 2 else ""


def test_the_scan_sees_every_layer() -> None:
    layers = {_layer(_module_name(path)) for path in MODULES}
    assert {"core", "host", "web", "cluster", "games", "client"} <= layers
    assert any(str(imp) for imp in IMPORTS if _within(imp.name, "gameserver.core"))


def test_core_is_pure() -> None:
    """No event loop, no I/O library, nothing from a layer above."""
    bad = [str(imp) for imp in IMPORTS if _layer(imp.importer) == "core"
           and ((_within(imp.name, "gameserver") and not _within(imp.name, "gameserver.core"))
                or _within(imp.name, "asyncio", *THIRD_PARTY_IO))]
    assert bad == []


def test_host_knows_nothing_of_web_or_cluster() -> None:
    bad = [str(imp) for imp in IMPORTS if _layer(imp.importer) == "host"
           and _within(imp.name, "gameserver.web", "gameserver.cluster", *THIRD_PARTY_IO)]
    assert bad == []


def test_web_imports_the_cluster_only_when_it_is_set_up() -> None:
    """Inside the functions that run with --redis, never at import time."""
    bad = [str(imp) for imp in IMPORTS if _layer(imp.importer) == "web"
           and _within(imp.name, "gameserver.cluster", "redis")
           and not (imp.in_function or imp.type_checking)]
    assert bad == []


def test_games_use_only_the_public_api() -> None:
    bad = [str(imp) for imp in IMPORTS if _layer(imp.importer) == "games"
           and ((_within(imp.name, "gameserver")
                 and not (imp.name == "gameserver" or _within(imp.name, "gameserver.core",
                                                              "gameserver.games")))
                or _within(imp.name, "asyncio", *THIRD_PARTY_IO))]
    assert bad == []


def test_the_client_stands_on_core_and_aiohttp_alone() -> None:
    """A bot or tool imports the client without the server: nothing of gameserver but
    core (and the client itself), nothing else than aiohttp, msgpack and the stdlib."""
    imports = [imp for imp in IMPORTS if _within(imp.importer, "gameserver.client")]
    assert imports
    bad = [str(imp) for imp in imports if not (
        _within(imp.name, "gameserver.core", "gameserver.client", "aiohttp", "msgpack")
        or imp.name.split(".")[0] in sys.stdlib_module_names)]
    assert bad == []
    # And the server's layers never import the client.
    assert [str(imp) for imp in IMPORTS if not _within(imp.importer, "gameserver.client")
            and _within(imp.name, "gameserver.client")] == []


# aiohttp's private names the seam relies on (its docstring lists them).
AIOHTTP_PRIVATE = {"_reader", "_parser", "_payload_parser", "_loop", "_max_msg_size",
                   "_limit", "_buffer", "_reading_paused", "_kwargs", "_make_server"}


def test_aiohttp_internals_are_touched_only_by_the_seam() -> None:
    seam = PACKAGE / "web" / "aiohttp_seam.py"
    bad: list[str] = []
    for path in MODULES:
        if path == seam:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            private_module = (isinstance(node, ast.ImportFrom | ast.Import)
                              and any(part.startswith("_") for imp in _names(node)
                                      for part in imp.split(".")[1:])
                              and any(_within(imp, "aiohttp") for imp in _names(node)))
            private_attr = (isinstance(node, ast.Attribute) and node.attr in AIOHTTP_PRIVATE
                            and not (isinstance(node.value, ast.Name)
                                     and node.value.id in ("self", "cls")))
            private_str = isinstance(node, ast.Constant) and node.value in AIOHTTP_PRIVATE
            private_def = (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                           and node.name in AIOHTTP_PRIVATE)  # an override
            if private_module or private_attr or private_str or private_def:
                bad.append(f"{_module_name(path)}:{getattr(node, 'lineno', '?')}")
    assert bad == []
    documented = set(re.findall(r"[.`](_[a-z_]+)\b", aiohttp_seam.__doc__ or ""))
    assert AIOHTTP_PRIVATE <= documented  # the seam's docstring lists what it relies on


def _names(node: ast.Import | ast.ImportFrom) -> list[str]:
    """What an import names: ``from aiohttp import _x`` names aiohttp._x."""
    if isinstance(node, ast.ImportFrom):
        return [f"{node.module or ''}.{alias.name}" for alias in node.names]
    return [alias.name for alias in node.names]


def test_the_supported_aiohttp_is_the_pinned_one_and_has_the_fast_path() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("aiohttp")]
    assert pins == ["aiohttp" + aiohttp_seam.SUPPORTED_AIOHTTP]
    # The installed aiohttp is within the pin, so the server runs on the direct path.
    assert aiohttp_seam.fast_path_available(), aiohttp_seam.fast_path_reason()


def _loaded(statement: str) -> list[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return list(json.loads(out))


CORE_MODULES = sorted(_module_name(p) for p in (PACKAGE / "core").glob("*.py"))


@pytest.mark.parametrize("statement", [
    "import gameserver.core",
    "import " + ", ".join(CORE_MODULES),
])
def test_core_loads_no_io_and_no_layer_above(statement: str) -> None:
    loaded = _loaded(statement)
    assert [m for m in loaded if _within(m, *THIRD_PARTY_IO, "gameserver.host",
                                         "gameserver.web", "gameserver.cluster")] == []


@pytest.mark.parametrize("statement", [
    "import gameserver",
    "from gameserver import Room, Entity",
])
def test_the_public_api_loads_no_web_server(statement: str) -> None:
    loaded = _loaded(statement)
    assert [m for m in loaded if _within(m, *THIRD_PARTY_IO, "gameserver.web",
                                         "gameserver.cluster", "gameserver.client")] == []


def test_the_client_loads_no_server() -> None:
    loaded = _loaded("from gameserver.client import Client")
    assert "aiohttp" in loaded and "gameserver.core.replica" in loaded
    assert [m for m in loaded if _within(m, "uvloop", "redis", "prometheus_client",
                                         "gameserver.host", "gameserver.web",
                                         "gameserver.cluster", "gameserver.games")] == []


def test_create_app_and_settings_load_when_asked_for() -> None:
    loaded = _loaded("from gameserver import create_app, Settings\n"
                     "import gameserver\n"
                     "assert {'create_app', 'Settings'} <= set(gameserver.__all__)\n"
                     "assert create_app.__module__ == 'gameserver.web.app'\n"
                     "assert Settings.__module__ == 'gameserver.config'")
    assert "gameserver.web.app" in loaded and "aiohttp" in loaded
    # A plain server (no --redis, no --workers) does not load the cluster.
    assert [m for m in loaded if _within(m, "redis", "gameserver.cluster")] == []
    with pytest.raises(AttributeError):
        _ = __import__("gameserver").no_such_name


def _readme_block(after: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(after)
    return readme[readme.index("```\n", start) + 4:readme.index("\n```", readme.index("```\n",
                                                                                       start) + 4)]


def test_the_readme_data_path_is_five_real_modules() -> None:
    """README, "How it works": one input from bytes to every client touches at most five
    modules, and the ones it names exist and hold what it says they call."""
    path = _readme_block("One input, from bytes to every client")
    modules = list(dict.fromkeys(re.findall(r"\b((?:core|host|web)/\w+\.py)", path)))
    assert 0 < len(modules) <= 5, modules
    sources = {m: (ROOT / "gameserver" / m).read_text() for m in modules}
    for name, module in [("class Inbound", "host/room_host.py"),
                         ("class Broadcaster", "host/room_host.py"),
                         ("def receive(self, seat", "core/engine.py"),
                         ("def tick(self)", "core/engine.py"),
                         ("def collect(self", "core/world.py"),
                         ("def encode_delta_tail", "core/codec.py"),
                         ("def decode_client", "core/codec.py"),
                         ("class _DirectQueue", "web/aiohttp_seam.py")]:
        assert name in sources[module], f"{module} has no {name}"


def test_the_readme_tree_names_real_files() -> None:
    tree = _readme_block("Four layers, one package each")
    package, folder, named = ROOT / "gameserver", "", 0
    for line in tree.splitlines()[1:]:
        entry = line.split()[0]
        if entry.endswith("/"):  # a layer's package: the files below are in it
            folder = entry
            assert (package / folder / "__init__.py").is_file(), entry
            continue
        for name in re.findall(r"\b[\w/]+\.py\b", line):
            if "/" not in name and not line.startswith("    "):
                folder = ""  # back at the top level
            assert (package / folder / name).is_file() or (package / name).is_file(), name
            named += 1
    assert named >= 15  # the tree is not allowed to shrink to nothing
