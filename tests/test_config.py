"""`[tool.losslint]` configuration, end to end through `losslint check`, and the resolver behind it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from losslint import config as config_module
from losslint.cli import main
from losslint.config import ConfigError, Layer, Overrides, Resolver, glob_matches
from losslint.engine import check_text
from losslint.rule import Report, Rule

# LL101 (unsafe fix) on line 4, LL201 (safe fix) on line 5.
BUGGY = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    def step(x, y):
        loss = F.cross_entropy(F.softmax(x, dim=1), y)
        return loss + torch.log(torch.softmax(x, 1)).mean()
""")


def check(*args: str):
    return CliRunner().invoke(main, ["check", "--output-format", "concise", *args], catch_exceptions=False)


def codes(output: str) -> list[tuple[str, str]]:
    """(file name, code) of every concise finding line."""
    found = []
    for line in output.splitlines():
        parts = line.split(": ", 2)
        if len(parts) >= 2 and parts[1][:2] == "LL":
            found.append((Path(parts[0].split(":")[0]).name, parts[1].split()[0]))
    return found


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "train.py", BUGGY)
    return tmp_path


def test_without_configuration_the_default_rules_run(project):
    result = check("train.py")
    assert result.exit_code == 1
    assert codes(result.stdout) == [("train.py", "LL101"), ("train.py", "LL201")]


def test_select_and_ignore_from_pyproject_with_prefixes(project):
    write(project / "pyproject.toml", """
        [tool.losslint]
        select = ["LL2"]
    """)
    assert codes(check("train.py").stdout) == [("train.py", "LL201")]
    write(project / "pyproject.toml", """
        [tool.losslint]
        select = ["ALL"]
        ignore = ["LL20"]
    """)
    assert codes(check("train.py").stdout) == [("train.py", "LL101")]


def test_extend_select_adds_to_the_default(project):
    write(project / "pyproject.toml", """
        [tool.losslint]
        ignore = ["LL101"]
        extend-select = ["LL101"]
    """)
    # Within one layer, ignore wins over extend-select (ruff's order).
    assert codes(check("train.py").stdout) == [("train.py", "LL201")]


def test_command_line_flags_override_the_file(project):
    write(project / "pyproject.toml", """
        [tool.losslint]
        ignore = ["LL101"]
    """)
    assert codes(check("train.py").stdout) == [("train.py", "LL201")]
    assert codes(check("--select", "LL101", "train.py").stdout) == [("train.py", "LL101")]
    assert codes(check("--ignore", "LL201", "train.py").stdout) == []


def test_the_nearest_pyproject_with_a_losslint_table_governs_each_file(project):
    write(project / "pyproject.toml", """
        [tool.losslint]
        ignore = ["LL201"]
    """)
    write(project / "sub" / "pyproject.toml", """
        [tool.losslint]
        ignore = ["LL101"]
    """)
    write(project / "other" / "pyproject.toml", """
        [project]
        name = "no-losslint-table-here"
    """)
    write(project / "sub" / "deep" / "a.py", BUGGY)
    write(project / "other" / "b.py", BUGGY)
    found = codes(check(".").stdout)
    assert ("a.py", "LL201") in found and ("a.py", "LL101") not in found
    # other/pyproject.toml has no [tool.losslint]: the project's file above it applies.
    assert ("b.py", "LL101") in found and ("b.py", "LL201") not in found
    assert ("train.py", "LL101") in found and ("train.py", "LL201") not in found


def test_per_file_ignores_by_glob_and_by_name(project):
    write(project / "pyproject.toml", """
        [tool.losslint]
        per-file-ignores = { "tests/**" = ["LL1"], "conftest.py" = ["LL201"] }
    """)
    write(project / "tests" / "unit" / "test_a.py", BUGGY)
    write(project / "pkg" / "conftest.py", BUGGY)
    found = codes(check(".").stdout)
    assert ("test_a.py", "LL101") not in found and ("test_a.py", "LL201") in found
    assert ("conftest.py", "LL201") not in found and ("conftest.py", "LL101") in found
    assert ("train.py", "LL101") in found and ("train.py", "LL201") in found


def test_exclude_applies_to_walked_folders_and_with_force_exclude_to_explicit_files(project):
    write(project / "pyproject.toml", """
        [tool.losslint]
        exclude = ["generated", "legacy/*.py"]
    """)
    write(project / "generated" / "g.py", BUGGY)
    write(project / "legacy" / "old.py", BUGGY)
    walked = {name for name, _ in codes(check(".").stdout)}
    assert walked == {"train.py"}
    explicit = {name for name, _ in codes(check("generated/g.py", "legacy/old.py").stdout)}
    assert explicit == {"g.py", "old.py"}
    forced = check("--force-exclude", "generated/g.py", "legacy/old.py", "train.py")
    assert {name for name, _ in codes(forced.stdout)} == {"train.py"}


def test_force_exclude_with_only_excluded_files_passes(project):
    write(project / "pyproject.toml", '[tool.losslint]\nexclude = ["train.py"]\n')
    result = check("--force-exclude", "train.py")
    assert result.exit_code == 0 and codes(result.stdout) == []


def test_exclude_replaces_the_built_in_folders_and_extend_exclude_adds(project):
    write(project / "build" / "b.py", BUGGY)
    write(project / "scratch" / "s.py", BUGGY)
    assert {name for name, _ in codes(check(".").stdout)} == {"train.py", "s.py"}
    write(project / "pyproject.toml", '[tool.losslint]\nextend-exclude = ["scratch"]\n')
    assert {name for name, _ in codes(check(".").stdout)} == {"train.py"}
    write(project / "pyproject.toml", '[tool.losslint]\nexclude = ["scratch"]\n')
    assert {name for name, _ in codes(check(".").stdout)} == {"train.py", "b.py"}
    assert {name for name, _ in codes(check("--extend-exclude", "build", ".").stdout)} == {"train.py"}


def test_explicit_config_file_with_top_level_keys(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("configs") / "losslint.toml"
    elsewhere.write_text('select = ["LL201"]\n')
    write(project / "pyproject.toml", '[tool.losslint]\nselect = ["LL101"]\n')
    assert codes(check("--config", str(elsewhere), "train.py").stdout) == [("train.py", "LL201")]
    assert codes(check("--isolated", "train.py").stdout) == [("train.py", "LL101"), ("train.py", "LL201")]


@pytest.mark.parametrize(("table", "expected"), [
    ('selct = ["LL1"]', "unknown key 'selct' in [tool.losslint] (did you mean 'select'?)"),
    ('select = ["LL999"]', "unknown rule code or prefix 'LL999'"),
    ('per-file-ignores = { "a.py" = ["XY1"] }', "unknown rule code or prefix 'XY1'"),
    ('select = "LL1, LL2"', "unknown rule code or prefix 'LL1, LL2'"),
    ("ignore = [1]", "'ignore' must be a list of strings"),
    ('unfixable = ["LL1O1"]', "unknown rule code or prefix 'LL1O1'"),
    ("[tool.losslint.options.LL101]\nthreshold = 3", "unknown option 'threshold' of LL101"),
    ("[tool.losslint.options.LL7777]\nx = 1", "unknown rule 'LL7777'"),
    ("select = [", "invalid TOML"),
])
def test_a_bad_configuration_is_a_clear_error_with_exit_status_2(project, table, expected):
    header = "" if table.startswith("[tool") else "[tool.losslint]\n"
    (project / "pyproject.toml").write_text(header + table + "\n")
    result = check("train.py")
    assert result.exit_code == 2
    assert expected in result.stderr and "pyproject.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_code_on_the_command_line_is_exit_2(project):
    for flag in ("--select", "--ignore", "--extend-select", "--fixable", "--unfixable"):
        result = check(flag, "LL9x9", "train.py")
        assert result.exit_code == 2 and "unknown rule code or prefix: 'LL9x9'" in result.stderr


def test_missing_explicit_config_file_is_exit_2(project):
    result = check("--config", "nope.toml", "train.py")
    assert result.exit_code == 2 and "nope.toml" in result.stderr


def test_fixable_and_unfixable(project):
    write(project / "pyproject.toml", '[tool.losslint]\nunfixable = ["LL201"]\n')
    result = check("--fix", "--unsafe-fixes", "train.py")
    assert result.exit_code == 1
    text = (project / "train.py").read_text()
    assert "F.cross_entropy(x, y)" in text and "torch.log(torch.softmax(x, 1))" in text
    write(project / "pyproject.toml", '[tool.losslint]\nfixable = ["LL101"]\n')
    (project / "train.py").write_text(BUGGY)
    check("--fix", "--unsafe-fixes", "--fixable", "LL201", "train.py")
    text = (project / "train.py").read_text()
    assert "F.cross_entropy(F.softmax(x, dim=1), y)" in text and "torch.log_softmax(x, 1)" in text


# -- rule options -------------------------------------------------------------------------


class LongNames(Rule):
    """A synthetic rule with an option: reports names longer than `max-length`."""

    code = "LL990"
    name = "long-names"
    summary = "synthetic"
    tokens = ("=",)
    options = {"max-length": 8}

    def check(self, ctx):
        import libcst as cst

        for statement in ctx.module.body:
            for small in getattr(statement, "body", ()):
                if isinstance(small, cst.Assign):
                    target = small.targets[0].target
                    if isinstance(target, cst.Name) and len(target.value) > self.option("max-length"):
                        yield Report(target, f"{target.value} is long")


def test_rule_options_are_validated_and_reach_the_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "rule_by_code", lambda code: LongNames if code in ("LL990", "long-names") else None)
    source = "short = 1\nrather_long = 2\n"
    assert [f.message for f in check_text(source, "a.py", [LongNames])] == ["rather_long is long"]

    (tmp_path / "pyproject.toml").write_text('[tool.losslint.options.long-names]\nmax-length = 4\n')
    loaded = config_module.load(tmp_path / "pyproject.toml")
    assert loaded.options == {"LL990": {"max-length": 4}}
    findings = check_text(source, "a.py", [LongNames], options=loaded.options)
    assert [f.message for f in findings] == ["short is long", "rather_long is long"]

    (tmp_path / "pyproject.toml").write_text('[tool.losslint.options.LL990]\nmax-length = "four"\n')
    with pytest.raises(ConfigError, match="'options.LL990.max-length' must be a int"):
        config_module.load(tmp_path / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text('[tool.losslint.options.LL990]\nmax-lenght = 3\n')
    with pytest.raises(ConfigError, match="did you mean 'max-length'"):
        config_module.load(tmp_path / "pyproject.toml")


# -- the resolver as the editor server and flake8 plugin use it --------------------------------


def test_resolver_settings_and_exclusion(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [tool.losslint]
        select = ["LL1", "LL900"]
        per-file-ignores = { "scripts/*.py" = ["LL101"] }
        extend-exclude = ["vendored"]
        unfixable = ["LL900"]
    """)
    resolver = Resolver(cwd=tmp_path)
    settings = resolver.settings_for(tmp_path / "pkg" / "model.py")
    assert {rule.code[:3] for rule in settings.rules} == {"LL1", "LL9"}
    assert settings.is_fixable("LL101") and not settings.is_fixable("LL900")
    assert "LL101" not in resolver.settings_for(tmp_path / "scripts" / "run.py").codes
    assert "LL101" in resolver.settings_for(tmp_path / "scripts" / "sub" / "run.py").codes
    assert resolver.is_excluded(tmp_path / "vendored" / "lib" / "x.py")
    assert resolver.is_excluded(tmp_path / ".venv" / "x.py")
    assert not resolver.is_excluded(tmp_path / "pkg" / "model.py")
    overridden = Resolver(cwd=tmp_path, overrides=Overrides(rules=Layer(select=("LL201",))))
    assert overridden.settings_for(tmp_path / "a.py").codes == {"LL201"}


def test_folders_above_the_project_do_not_count_for_exclusion(tmp_path):
    root = tmp_path / "build" / "checkout"
    write(root / "pyproject.toml", "[tool.losslint]\n")
    assert not Resolver(cwd=root).is_excluded(root / "src" / "a.py")
    assert Resolver(cwd=root).is_excluded(root / "build" / "a.py")


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("tests/**", "tests/a/b.py", True),
    ("tests/**", "src/tests/b.py", False),
    ("**/test_*.py", "a/b/test_x.py", True),
    ("**/test_*.py", "test_x.py", True),
    ("*.py", "deep/down/x.py", True),
    ("src/*.py", "src/sub/x.py", False),
    ("data[0-9]", "data7", True),
    ("./notebooks/", "notebooks", True),
])
def test_glob_patterns(tmp_path, pattern, path, matches):
    assert glob_matches(pattern, tmp_path / path, tmp_path) is matches


def test_overrides_reject_unknown_codes():
    with pytest.raises(ConfigError, match="LL1234"):
        Overrides(rules=Layer(select=("LL1234",)))
