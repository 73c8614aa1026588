"""The class-data archive is used only while it matches the JDK and the jars it was made with."""

from __future__ import annotations

from devtools import spark_cds


def test_the_archive_is_used_only_with_the_key_it_was_made_for(tmp_path):
    archive = tmp_path / "spark-cds.jsa"
    assert spark_cds.jvm_option(archive) == ""  # none made yet
    archive.write_bytes(b"archive")
    assert spark_cds.jvm_option(archive) == ""  # no key: made by an interrupted build
    archive.with_suffix(".key").write_text("another jdk or other jars\n")
    assert spark_cds.jvm_option(archive) == ""
    archive.with_suffix(".key").write_text(spark_cds.archive_key() + "\n")
    assert spark_cds.jvm_option(archive) == f"-XX:SharedArchiveFile={archive}"


def test_the_key_changes_with_any_jar_of_the_class_path(tmp_path, monkeypatch):
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "a.jar").write_bytes(b"one")
    monkeypatch.setenv("LAKEHOUSE_JARS_DIR", str(jars))
    before = spark_cds.archive_key()
    assert spark_cds.archive_key() == before
    (jars / "a.jar").write_bytes(b"one, rebuilt")
    assert spark_cds.archive_key() != before


def test_containers_get_the_options_without_the_hosts_archive():
    options = "-XX:TieredStopAtLevel=1 -XX:SharedArchiveFile=/work/.jars/spark-cds.jsa -XX:+UseSerialGC"
    assert spark_cds.without_archive(options) == "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
