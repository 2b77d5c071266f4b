"""Small synthetic Kconfig trees for unit tests, and a runner for the kernel's real ``conf``.

Each tree is written into a temporary directory with a kernel-like Makefile
(so the environment derivation finds a KERNELVERSION). Cases are modelled on
the kernel's own ``scripts/kconfig/tests``: one construct per tree.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import realkernel

def write_tree(root: Path, kconfig: str, extra: dict[str, str] | None = None,
               version: str = "6.12") -> Path:
    """Write a Kconfig tree (``Kconfig`` plus ``extra`` files) under ``root``; return ``root``.

    ``version`` goes into the Makefile; it decides the choice rules (Linux >= 6.11 or older).
    """
    root.mkdir(parents=True, exist_ok=True)
    major, minor = version.split(".")
    (root / "Makefile").write_text(
        f"VERSION = {major}\nPATCHLEVEL = {minor}\nSUBLEVEL = 0\nEXTRAVERSION =\n"
    )
    (root / "Kconfig").write_text(textwrap.dedent(kconfig))
    for name, text in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def write_config(path: Path, text: str) -> Path:
    """Write a ``.config`` from dedented ``text``."""
    path.write_text(textwrap.dedent(text))
    return path


def run_conf(conf: Path, tree: Path, config: Path) -> dict[str, str]:
    """Run the kernel's ``conf --olddefconfig`` on ``tree`` with ``config``; return its assignments."""
    out = config.with_name(config.name + ".conf-out")
    out.write_bytes(config.read_bytes())
    env = dict(realkernel.oracle_env(), srctree=str(tree), KCONFIG_CONFIG=str(out))
    proc = subprocess.run(
        [str(conf), "--olddefconfig", "Kconfig"], cwd=tree, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return realkernel.read_assignments(out)


# --- the cases -------------------------------------------------------------------------------

MODULES_ATTRIBUTE = """\
    config MODULES
    	bool "Enable loadable module support"
    	modules
    	default y

    config A
    	tristate "A"
    	help
    	  modules
    	  The word above is help text and must stay help text.

    config B
    	tristate "B"
    	depends on A

    config C
    	tristate "C"
    	default m
    """

CHOICE = """\
    config MODULES
    	bool "modules"
    	modules
    	default y

    config A
    	bool "A"

    choice
    	prompt "Pick one"
    	default C2

    config C1
    	bool "C1"

    config C2
    	bool "C2"

    config C3
    	bool "C3"
    	depends on A

    endchoice
    """

SELECT_IMPLY = """\
    config MODULES
    	bool "modules"
    	modules
    	default y

    config S
    	bool "S"
    	select T
    	imply U

    config T
    	bool

    config DEP
    	tristate "DEP"

    config U
    	tristate "U"
    	depends on DEP

    config BLOCK
    	bool "BLOCK"

    config V
    	bool "V"
    	depends on BLOCK

    config W
    	bool "W"
    	depends on BLOCK

    config SW
    	bool "SW"
    	select W
    """

#: ``depends on X if Y`` (Linux >= 7.0) and the form the kernel defines it as.
CONDITIONAL_DEPENDS = """\
    config MODULES
    	bool "modules"
    	modules
    	default y

    config X
    	tristate "X"

    config Y
    	tristate "Y"

    config Z
    	tristate "Z"

    config BASIC
    	tristate "basic"
    	depends on X if Y
    	default y

    config COMPLEX
    	tristate "complex"
    	depends on (X && Z) if (Y || Z)
    	default y

    config OPTIONAL
    	tristate "optional"
    	depends on Z if Z
    	default y
    """

CONDITIONAL_DEPENDS_AS_KERNEL_DEFINES = (
    CONDITIONAL_DEPENDS.replace("depends on X if Y", "depends on X || Y = n")
    .replace("depends on (X && Z) if (Y || Z)", "depends on (X && Z) || (Y = n && Z = n)")
    .replace("depends on Z if Z", "depends on Z || Z = n")
)

TRANSITIONAL = """\
    config MODULES
    	bool "modules"
    	modules
    	default y

    config NEW_BOOL
    	bool "new bool"
    	default OLD_BOOL

    config OLD_BOOL
    	bool
    	transitional
    	help
    	  Renamed to NEW_BOOL.

    config NEW_TRI
    	tristate "new tristate"
    	default OLD_TRI

    config OLD_TRI
    	tristate
    	transitional

    config NEW_STR
    	string "new string"
    	default OLD_STR

    config OLD_STR
    	string
    	transitional

    config NEW_INT
    	int "new int"
    	default OLD_INT

    config OLD_INT
    	int
    	transitional

    config NEW_KEPT
    	bool "the user's own value wins"
    	default OLD_KEPT

    config OLD_KEPT
    	bool
    	transitional
    """


# drivers/usb/cdns3/Kconfig (7.2): conditions with '!', lowered through expr_trans_compare.
NEGATED_CONDITIONAL_DEPENDS = """\
    config MODULES
    	bool "modules"
    	modules
    	default y

    config USB
    	tristate "USB"

    config USB_GADGET
    	tristate "gadget"

    config CDNS
    	tristate "cdns"
    	depends on USB if !USB_GADGET
    	depends on USB_GADGET if !USB
    	default y

    config BOTH
    	tristate "both"
    	depends on USB if !(USB_GADGET && USB != y)
    	default y
    """

# mm/Kconfig (7.x): an int symbol without prompt or default, compared with 0.
INT_WITHOUT_VALUE = """\
    config FORCE_ORDER
    	int

    config MASK
    	hex

    config ORDER
    	int "order"
    	range 1 10 if FORCE_ORDER = 0
    	range 1 FORCE_ORDER
    	default 10

    config MASK_IS_ZERO
    	bool "mask is zero"
    	default y if MASK = 0x0
    """

# arch/x86/Kconfig's VMSPLIT choice and aufs's 'choice prompt "method" if AUFS_HNOTIFY'.
CONDITIONAL_CHOICE_PROMPT = """\
    config EXPERT
    	bool "expert"

    config X86_32
    	bool "32-bit"
    	default y

    choice
    	prompt "Memory split" if EXPERT
    	default VMSPLIT_3G
    	depends on X86_32

    config VMSPLIT_3G
    	bool "3G/1G"

    config VMSPLIT_2G
    	bool "2G/2G"

    endchoice

    config PAGE_OFFSET
    	hex
    	default 0x80000000 if VMSPLIT_2G
    	default 0xC0000000
    """

# drivers/usb/mtu3/Kconfig: a bool choice member inside 'if USB_MTU3' selects a tristate.
SELECT_FROM_CHOICE_IN_IF = """\
    config MODULES
    	bool "modules"
    	modules
    	default y

    config USB_ROLE_SWITCH
    	tristate "role switch"

    config USB_MTU3
    	tristate "mtu3"

    if USB_MTU3
    choice
    	bool "mode"
    	default USB_MTU3_DUAL_ROLE

    config USB_MTU3_HOST
    	bool "host"

    config USB_MTU3_DUAL_ROLE
    	bool "dual role"
    	select USB_ROLE_SWITCH

    endchoice
    endif
    """
