"""The check flow every front end shares: locate -> read -> evaluate -> Report.

``kcheck --driver D``, ``kcheck lint``, the Portage hook and the fixer's
verification all call :func:`run_check` (or :func:`check_location` when they
have already chosen the file), so a verdict is made in one place only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from kcheck import dotconfig, engine, version
from kcheck.locate import KernelLocation, locate
from kcheck.errors import ProfileError
from kcheck.model import CheckContext, ConfigSource, InputProblem, Report
from kcheck.profile import RUNTIMES, Profile, load_base, load_file, load_shipped


def select_profiles(driver: str | None, profile_files: Sequence[Path] = (), base: bool = True,
                    runtime: str = "docker") -> list[Profile]:
    """The runtime's base profile, the driver's, then the user's own, in that order.

    A user's profile whose name is already taken (a profile named ``docker``,
    say) is shown with its file name, so a report never has two sections of
    the same name.
    """
    profiles = [load_base(runtime)] if base else []
    if driver is not None:
        if driver in RUNTIMES:
            raise ProfileError(f"{driver} is the base profile of --runtime {driver} and always checked with it; "
                               f"--driver takes a storage driver (see 'kcheck drivers')")
        profiles.append(load_shipped(driver, runtime))
    taken = {p.name for p in profiles} | set(RUNTIMES)
    for path in profile_files:
        profile = load_file(path)
        if profile.name in taken:
            profile = dataclasses.replace(profile, name=f"{profile.name} ({path.name})")
        taken.add(profile.name)
        profiles.append(profile)
    return profiles


def profile_symbols(profiles: Sequence[Profile]) -> list[str]:
    """Every symbol (and alias) the requirements of ``profiles`` name."""
    return list(dict.fromkeys(name for p in profiles for req in p.requirements for name in req.names))


def open_source(
    location: KernelLocation,
    plain: dotconfig.DotConfig,
    *,
    use_kconfig: bool,
    allow_shell: bool,
    kconfig_trees: MutableMapping | None = None,
) -> ConfigSource:
    """The Kconfig-aware reader when a tree is there and wanted, else the plain one.

    ``kconfig_trees`` (architecture -> parsed tree) lets a caller that checks
    many files against one tree (``kcheck lint``) parse it once per architecture.
    """
    if location.tree is None or not use_kconfig:
        return plain
    from kcheck.kconfig import KconfigTree  # imported only when a tree is used: it is the slow part

    arch = plain.header_arch
    trees = {} if kconfig_trees is None else kconfig_trees
    if arch not in trees:
        trees[arch] = KconfigTree.load(location.tree, arch=arch, allow_shell=allow_shell)
    return trees[arch].read(location.config, plain)


def check_location(
    location: KernelLocation,
    profiles: Sequence[Profile],
    *,
    root: Path = Path("/"),
    kconfig_trees: MutableMapping | None = None,
    kernel_version: str | None = None,
    use_kconfig: bool = True,
    allow_shell: bool = True,
    host: bool = False,
    explicit: bool = True,
    facts: Mapping[str, str] | None = None,
) -> Report:
    """Evaluate ``profiles`` against the configuration at ``location``.

    With ``host``, the host checks (:mod:`kcheck.host`) add their findings
    when the configuration belongs to this machine; ``explicit`` says the
    user named the configuration rather than letting kcheck find it.
    ``facts`` are the ones the user chose (``runtime``, ``firewall``, see
    :func:`initial_facts`); the profiles' own facts functions add the rest.
    """
    plain = dotconfig.load(location.config)
    source = open_source(location, plain, use_kconfig=use_kconfig, allow_shell=allow_shell, kconfig_trees=kconfig_trees)
    prepare = getattr(source, "prepare", None)
    if prepare is not None:
        # A Kconfig-aware source readies every symbol the profiles name in one go (see kcheck.kconfig.snapshot).
        prepare(profile_symbols(profiles))
    problems = list(plain.problems)
    refused = getattr(getattr(source, "tree", None), "shell_refused", None)
    if refused and location.tree is not None:
        problems.append(InputProblem(location.tree, None, refused))
    kver = version.detect(
        override=kernel_version,
        tree=location.tree,
        build_dir=location.build_dir,
        header_version=plain.header_version,
    )
    ctx = CheckContext(
        root=root,
        source=source,
        tree=location.tree,
        build_dir=location.build_dir,
        kernel_version=kver,
        live=location.live,
        facts=dict(facts or {}),
    )
    if host:
        from kcheck import host as host_checks

        # Decided before the checks run: the aufs checks leave the kernel's install/boot state to the host section.
        ctx.host_checked = host_checks.applies(ctx, explicit=explicit)
    findings = engine.evaluate(profiles, ctx)
    if host:
        findings += host_checks.host_findings(ctx, profiles, findings)
    return Report(
        config_path=location.config,
        config_reason=location.reason,
        mode=source.mode,
        kernel_version=kver,
        profiles=[p.name for p in profiles],
        findings=findings,
        problems=problems,
        tree=location.tree,
        kconfig_warnings=list(getattr(getattr(source, "tree", None), "warnings", [])),
    )


def initial_facts(runtime: str = "docker", firewall: str | None = None) -> dict[str, str]:
    """The facts a user's options fix before any profile runs: ``runtime``, ``firewall`` and why."""
    facts = {"runtime": runtime}
    if firewall:
        facts.update({"firewall": firewall, "firewall-why": "given with --firewall"})
    return facts


def run_check(
    *,
    driver: str | None,
    profile_files: Sequence[Path] = (),
    config: Path | None = None,
    kernel_dir: Path | None = None,
    root: Path = Path("/"),
    kernel_version: str | None = None,
    use_kconfig: bool = True,
    allow_shell: bool = True,
    host: bool = False,
    runtime: str = "docker",
    firewall: str | None = None,
    facts: Mapping[str, str] | None = None,
) -> Report:
    """Locate the configuration and check it for ``driver`` plus the runtime's base needs (and the host, with ``host``).

    ``firewall`` fixes the firewall backend (see :mod:`kcheck.firewall`);
    ``facts`` adds facts a front end already decided (the driver's origin).
    """
    profiles = select_profiles(driver, profile_files, runtime=runtime)
    location = locate(config=config, kernel_dir=kernel_dir, root=root)
    return check_location(
        location,
        profiles,
        root=root,
        kernel_version=kernel_version,
        use_kconfig=use_kconfig,
        allow_shell=allow_shell,
        host=host,
        explicit=config is not None or kernel_dir is not None,
        facts={**initial_facts(runtime, firewall), **(facts or {})},
    )
