from __future__ import annotations

from tasks.core.platforms import lookup
from tasks.engine.emulation import check_handler, host_platform_name, is_native

GOOD = "enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c46\n"


def test_good_handler():
    assert check_handler(lookup("arm"), mounted=True, handler_text=GOOD) is None


def test_each_problem_names_the_fix():
    arm = lookup("arm")
    disabled = check_handler(arm, mounted=True, handler_text=GOOD.replace("enabled", "disabled"))
    assert "disabled" in str(disabled) and "echo 1 > /proc/sys/fs/binfmt_misc/qemu-arm" in str(disabled)
    missing = check_handler(arm, mounted=True, handler_text=None)
    assert "qemu-user-static" in str(missing) and "linux/arm/v7" in str(missing)
    no_f = check_handler(arm, mounted=True, handler_text=GOOD.replace("flags: PF", "flags: P"))
    assert "F (fix-binary)" in str(no_f) and "exec format error" in str(no_f)
    unmounted = check_handler(arm, mounted=False, handler_text=None)
    assert "mount -t binfmt_misc" in str(unmounted)


def test_native_platforms_need_no_emulator():
    assert host_platform_name("x86_64") == "amd64" and host_platform_name("aarch64") == "arm64"
    assert is_native(lookup("amd64"), "amd64") and is_native(lookup("386"), "amd64")
    assert not is_native(lookup("arm64"), "amd64") and not is_native(lookup("arm"), "arm64")


def test_handler_fields():
    from tasks.engine.emulation import handler_field
    assert handler_field(GOOD, "flags") == "PF"
    assert handler_field(GOOD, "interpreter") == "/usr/libexec/qemu-binfmt/arm-binfmt-P"
    assert handler_field(GOOD, "missing") == ""
