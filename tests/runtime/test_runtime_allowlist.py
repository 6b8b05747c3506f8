"""The allow-list: what a confirmed slice may name, checked on the exact program text the worker compiles."""

from __future__ import annotations

import math

import pytest

from losslint.runtime import allowlist

ALLOWED = """
def helper(z, dim=1):
    return torch.nn.functional.log_softmax(z, dim)
loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
p = torch.softmax(logits.float() / 2.0, dim=-1)
lp = helper(logits)[range(len(y)), y]
total = sum([lp.mean(), loss_fn(logits, y)]) + math.log(2.0)
B, K = logits.shape
losslint_taps = {"value": torch.log(p).view(B, K), "loss": total}
"""

# Each program would reach files, processes, the interpreter or a part of torch that is not maths.
REFUSED = {
    "import": ("import os\nx = 1", "import"),
    "from-import": ("from subprocess import call\nx = 1", "import"),
    "dunder import": ("m = __import__('os')", "__import__"),
    "open": ("f = open('pwned', 'w')", "open"),
    "eval": ("x = eval('1 + 1')", "eval"),
    "exec": ("exec('x = 1')", "exec"),
    "getattr": ("f = getattr(torch, 'lo' + 'ad')", "getattr"),
    "class mro": ("x = logits.__class__.__mro__", ".__class__"),
    "globals": ("g = globals()", "globals"),
    "torch.load": ("x = torch.load('weights.pt')", "torch.load"),
    "torch.save": ("torch.save(logits, 'x.pt')", "torch.save"),
    "torch.from_file": ("x = torch.from_file('x.bin')", "torch.from_file"),
    "torch.hub": ("m = torch.hub.load('a', 'b')", "torch.hub.load"),
    "torch.ops": ("x = torch.ops.aten.add(logits, 1)", "torch.ops.aten.add"),
    "torch.compile": ("f = torch.compile(abs)", "torch.compile"),
    "torch.utils": ("d = torch.utils.data.DataLoader([])", "torch.utils.data.DataLoader"),
    "torch.cuda": ("n = torch.cuda.device_count()", "torch.cuda.device_count"),
    "torch.distributed": ("torch.distributed.init_process_group('gloo')", "torch.distributed.init_process_group"),
    "torch.backends": ("x = torch.backends.cudnn", "torch.backends.cudnn"),
    "torch.library": ("lib = torch.library.Library('x', 'DEF')", "torch.library.Library"),
    "bare torch": ("t = torch", "torch"),
    "rebound torch": ("torch = logits\nx = torch.load", "torch"),
    "tensor to numpy": ("a = logits.numpy()", ".numpy"),
    "storage": ("s = logits.untyped_storage()", ".untyped_storage"),
    "string method": ("s = ''.join(['a'])", ".join"),
    "private attribute": ("s = logits._base", "._base"),
    "lambda": ("f = lambda: 0", "lambda"),
    "f-string": ("s = f'{logits}'", "f-string"),
    "with": ("with x:\n    pass", "with"),
    "try": ("try:\n    x = 1\nexcept Exception:\n    x = 2", "try"),
    "class": ("class A:\n    pass", "class definition"),
    "global": ("def f():\n    global x\n    x = 1", "global"),
    "decorator": ("@torch.no_grad\ndef f():\n    return 1", "decorator"),
    "unknown name": ("x = secret_helper(logits)", "secret_helper"),
}


def test_an_ordinary_loss_slice_is_allowed():
    assert allowlist.check_program(ALLOWED, {"logits", "y"}) == []


@pytest.mark.parametrize(("source", "offender"), list(REFUSED.values()), ids=list(REFUSED))
def test_hostile_programs_are_refused_naming_the_offender(source, offender):
    refusals = allowlist.check_program(source, {"logits", "x"})
    assert refusals, f"{source!r} must be refused"
    assert any(r.offender == offender for r in refusals), refusals


def test_the_slices_own_names_may_shadow_builtins():
    assert allowlist.check_program("def f(input, type):\n    return input * type\nx = f(input, 2)", {"input"}) == []


def test_nothing_outside_maths_is_on_the_list():
    excluded = ("torch.load", "torch.save", "torch.from_file", "torch.hub", "torch.ops", "torch.compile",
                "torch.utils", "torch.cuda", "torch.distributed", "torch.backends", "torch.library",
                "torch.jit", "torch.multiprocessing", "torch.package")
    for name in allowlist.ALLOWED_QUALNAMES:
        assert name.split(".")[0] in ("torch", "math")
        assert not name.startswith(excluded), name
    assert not any(name.startswith("_") for name in allowlist.ALLOWED_ATTRIBUTES)


def test_every_allowed_name_exists_in_the_pinned_torch():
    torch = pytest.importorskip("torch")
    modules = {"torch": torch, "math": math}
    missing = []
    for qualname in allowlist.ALLOWED_QUALNAMES:
        target = modules[qualname.split(".")[0]]
        try:
            for part in qualname.split(".")[1:]:
                target = getattr(target, part)
        except AttributeError:
            missing.append(qualname)
    assert missing == []


def test_the_namespaces_hold_only_allowed_names():
    torch = pytest.importorskip("torch")
    spaces = allowlist.namespaces({"torch": torch, "math": math})
    assert spaces["torch"].nn.functional.softmax is torch.nn.functional.softmax
    assert spaces["torch"].nn.CrossEntropyLoss is torch.nn.CrossEntropyLoss
    for forbidden in ("load", "save", "hub", "ops", "compile", "utils", "cuda", "from_file", "backends"):
        with pytest.raises(AttributeError):
            getattr(spaces["torch"], forbidden)
    with pytest.raises(AttributeError):
        spaces["torch"].nn.Module  # noqa: B018 - a layer with weights is not a loss or an activation
    with pytest.raises(AttributeError):
        spaces["torch"].softmax = None


def test_the_builtins_import_only_loaded_torch_modules():
    torch = pytest.importorskip("torch")
    builtins = allowlist.safe_builtins()
    assert builtins["__import__"]("torch") is torch
    with pytest.raises(ImportError):
        builtins["__import__"]("os")
    assert "open" not in builtins and "eval" not in builtins and "getattr" not in builtins
