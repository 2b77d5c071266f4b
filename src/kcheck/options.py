"""Command-line options shared by ``kcheck``, ``kcheck fix`` and ``kcheck lint``: the runtime and the firewall.

They are :class:`click.Choice` options, so shell completion can offer their
values. The choices are spelled out here, not imported from
:mod:`kcheck.profile` and :mod:`kcheck.firewall`, so that the command line
starts without loading them; a test keeps the lists equal.
"""

from __future__ import annotations

import click

#: ``kcheck.profile.RUNTIMES``.
RUNTIME_CHOICES = ("docker", "podman", "containerd")
#: ``kcheck.firewall.BACKENDS``.
FIREWALL_CHOICES = ("iptables-legacy", "iptables-nft", "nftables")


def runtime_option(default_help: str = "on a live run the one installed, else docker"):
    """``--runtime docker|podman|containerd``: whose base profile and drivers to check."""
    return click.option("--runtime", type=click.Choice(RUNTIME_CHOICES),
                        help=f"Container runtime to check for [default: {default_help}].")


def firewall_option(default_help: str = "on a live run the runtime's setting and 'iptables -V', else iptables-legacy"):
    """``--firewall iptables-legacy|iptables-nft|nftables``: the backend whose netfilter needs are checked."""
    return click.option("--firewall", type=click.Choice(FIREWALL_CHOICES),
                        help=f"Firewall backend the runtime drives [default: {default_help}].")
