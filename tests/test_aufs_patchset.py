"""The shipped aufs patch data is derived from the real aufs-standalone patches, and stays so."""

from __future__ import annotations

from importlib import resources

import aufs_trees
import pytest

from kcheck import aufs_patchset


def test_shipped_data_regenerates_from_the_patches():
    if not (aufs_trees.PATCHES / "aufs6.1").is_dir():
        pytest.skip(f"the aufs patches are not in {aufs_trees.PATCHES}")
    shipped = resources.files("kcheck").joinpath("data", "aufs-patchset.json").read_text(encoding="utf-8")
    assert aufs_patchset.dumps(aufs_patchset.derive(aufs_trees.PATCHES)) == shipped, (
        "src/kcheck/data/aufs-patchset.json is stale: python -m kcheck.aufs_patchset "
        f"{aufs_trees.PATCHES} > src/kcheck/data/aufs-patchset.json"
    )


def test_the_data_says_what_the_patches_say():
    branches = {b.name: b for b in aufs_patchset.branches()}
    assert set(branches) == {"aufs6.1", "aufs6.x-rcN"}
    for branch in branches.values():
        standalone, mmap = branch.patches["standalone"], branch.patches["mmap"]
        assert len(standalone.exports) == 25 and standalone.exports["d_walk"] == "fs/dcache.c"
        assert "vfs_readf" not in standalone.exports  # aufs4's name; aufs6 exports vfs_read itself
        assert mmap.new_files == ("mm/prfile.c",)
        assert any(h.file == "mm/mmap.c" for h in mmap.hunks)
    assert "do_splice_to" in branches["aufs6.1"].patches["standalone"].exports
    assert "collect_mounts" in branches["aufs6.x-rcN"].patches["standalone"].exports
    assert branches["aufs6.1"].fits(6, 1) and not branches["aufs6.1"].fits(6, 12)
    assert branches["aufs6.x-rcN"].fits(6, 12) and not branches["aufs6.x-rcN"].fits(5, 10)


def test_hunk_signatures_tell_hunks_that_add_the_same_line_apart():
    patch = "\n".join([
        "--- a/mm/x.c", "+++ b/mm/x.c",
        "@@ -10,3 +10,3 @@ f()", " a();", "-\tfput(f);", "+\tvma_fput(vma);", " b();",
        "@@ -20,3 +20,3 @@ g()", " c();", "-\tfput(f);", "+\tvma_fput(vma);", " d();",
        "--- /dev/null", "+++ b/mm/new.c", "@@ -0,0 +1 @@", "+int x;",
    ])
    data = aufs_patchset.parse_patch(patch)
    assert data["new_files"] == ["mm/new.c"]
    assert [h["lines"] for h in data["hunks"]] == [["a();", "vma_fput(vma);", "b();"], ["c();", "vma_fput(vma);", "d();"]]


def test_module_entry_point_usage_error(capsys):
    assert aufs_patchset.main([]) == 2
    assert "usage:" in capsys.readouterr().err
