"""Database triggers that keep the SampleLabel read index and Dataset.revision in step with every write.

Annotations are written by several sections (imports here, the labeling workbench, smart
labeling), often in bulk; triggers make the index correct whatever writes them, including
bulk_create/bulk_update/queryset updates that bypass model code. SQLite and PostgreSQL get
equivalent triggers; other databases are not supported by Atelier.
"""
from django.db import migrations

SQLITE = [
    """CREATE TRIGGER datasets_annotation_index_insert AFTER INSERT ON datasets_annotation
    BEGIN
      INSERT OR IGNORE INTO datasets_samplelabel (dataset_id, label_id, sample_id, usage, label_status, created_at)
        SELECT NEW.dataset_id, NEW.label_id, NEW.sample_id, s.usage, s.label_status, s.created_at
        FROM datasets_sample s WHERE s.id = NEW.sample_id AND NEW.label_id IS NOT NULL;
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
    """CREATE TRIGGER datasets_annotation_index_delete AFTER DELETE ON datasets_annotation
    BEGIN
      DELETE FROM datasets_samplelabel WHERE sample_id = OLD.sample_id AND label_id = OLD.label_id
        AND NOT EXISTS (SELECT 1 FROM datasets_annotation a WHERE a.sample_id = OLD.sample_id
                        AND a.label_id = OLD.label_id);
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = OLD.dataset_id;
    END""",
    """CREATE TRIGGER datasets_annotation_index_update AFTER UPDATE OF label_id, sample_id ON datasets_annotation
    BEGIN
      DELETE FROM datasets_samplelabel WHERE sample_id = OLD.sample_id AND label_id = OLD.label_id
        AND NOT EXISTS (SELECT 1 FROM datasets_annotation a WHERE a.sample_id = OLD.sample_id
                        AND a.label_id = OLD.label_id);
      INSERT OR IGNORE INTO datasets_samplelabel (dataset_id, label_id, sample_id, usage, label_status, created_at)
        SELECT NEW.dataset_id, NEW.label_id, NEW.sample_id, s.usage, s.label_status, s.created_at
        FROM datasets_sample s WHERE s.id = NEW.sample_id AND NEW.label_id IS NOT NULL;
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
    """CREATE TRIGGER datasets_sample_revision_insert AFTER INSERT ON datasets_sample
    BEGIN
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
    """CREATE TRIGGER datasets_sample_revision_delete AFTER DELETE ON datasets_sample
    BEGIN
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = OLD.dataset_id;
    END""",
    """CREATE TRIGGER datasets_sample_index_update AFTER UPDATE OF usage, label_status, hard ON datasets_sample
    BEGIN
      UPDATE datasets_samplelabel SET usage = NEW.usage, label_status = NEW.label_status
        WHERE sample_id = NEW.id AND (usage != NEW.usage OR label_status != NEW.label_status);
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS datasets_annotation_index_insert",
               "DROP TRIGGER IF EXISTS datasets_annotation_index_delete",
               "DROP TRIGGER IF EXISTS datasets_annotation_index_update",
               "DROP TRIGGER IF EXISTS datasets_sample_index_update",
               "DROP TRIGGER IF EXISTS datasets_sample_revision_insert",
               "DROP TRIGGER IF EXISTS datasets_sample_revision_delete"]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION datasets_annotation_index() RETURNS trigger AS $$
    DECLARE ds bigint;
    BEGIN
      IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.label_id IS NOT NULL THEN
        DELETE FROM datasets_samplelabel sl WHERE sl.sample_id = OLD.sample_id AND sl.label_id = OLD.label_id
          AND NOT EXISTS (SELECT 1 FROM datasets_annotation a WHERE a.sample_id = OLD.sample_id
                          AND a.label_id = OLD.label_id);
      END IF;
      IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.label_id IS NOT NULL THEN
        INSERT INTO datasets_samplelabel (dataset_id, label_id, sample_id, usage, label_status, created_at)
          SELECT NEW.dataset_id, NEW.label_id, NEW.sample_id, s.usage, s.label_status, s.created_at
          FROM datasets_sample s WHERE s.id = NEW.sample_id
          ON CONFLICT (sample_id, label_id) DO NOTHING;
      END IF;
      IF TG_OP = 'DELETE' THEN ds := OLD.dataset_id; ELSE ds := NEW.dataset_id; END IF;
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = ds;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER datasets_annotation_index AFTER INSERT OR DELETE OR UPDATE OF label_id, sample_id
    ON datasets_annotation FOR EACH ROW EXECUTE FUNCTION datasets_annotation_index()""",
    """CREATE OR REPLACE FUNCTION datasets_sample_index() RETURNS trigger AS $$
    BEGIN
      UPDATE datasets_samplelabel SET usage = NEW.usage, label_status = NEW.label_status
        WHERE sample_id = NEW.id AND (usage <> NEW.usage OR label_status <> NEW.label_status);
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER datasets_sample_index AFTER UPDATE OF usage, label_status, hard ON datasets_sample
    FOR EACH ROW EXECUTE FUNCTION datasets_sample_index()""",
    """CREATE OR REPLACE FUNCTION datasets_sample_revision() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        UPDATE datasets_dataset SET revision = revision + 1 WHERE id = OLD.dataset_id;
      ELSE
        UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER datasets_sample_revision AFTER INSERT OR DELETE ON datasets_sample
    FOR EACH ROW EXECUTE FUNCTION datasets_sample_revision()""",
]
POSTGRES_DROP = ["DROP TRIGGER IF EXISTS datasets_annotation_index ON datasets_annotation",
                 "DROP TRIGGER IF EXISTS datasets_sample_revision ON datasets_sample",
                 "DROP FUNCTION IF EXISTS datasets_sample_revision()",
                 "DROP TRIGGER IF EXISTS datasets_sample_index ON datasets_sample",
                 "DROP FUNCTION IF EXISTS datasets_annotation_index()",
                 "DROP FUNCTION IF EXISTS datasets_sample_index()"]


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement)


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _run(schema_editor, SQLITE)
    elif vendor == "postgresql":
        _run(schema_editor, POSTGRES)
    else:
        raise RuntimeError(f"Atelier supports SQLite and PostgreSQL, not {vendor}.")
    # Rebuild the index from what is there now (the triggers only see later writes).
    schema_editor.execute("DELETE FROM datasets_samplelabel")
    schema_editor.execute(
        "INSERT INTO datasets_samplelabel (dataset_id, label_id, sample_id, usage, label_status, created_at) "
        "SELECT DISTINCT a.dataset_id, a.label_id, a.sample_id, s.usage, s.label_status, s.created_at "
        "FROM datasets_annotation a JOIN datasets_sample s ON s.id = a.sample_id WHERE a.label_id IS NOT NULL")


def drop(apps, schema_editor):
    _run(schema_editor, SQLITE_DROP if schema_editor.connection.vendor == "sqlite" else POSTGRES_DROP)


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_sample_label_index")]

    operations = [migrations.RunPython(create, drop)]
