"""Let a bulk writer maintain the SampleLabel index and revision itself, inside its own transaction.

The triggers of 0003 stay in force for every writer, except while the writing transaction
holds a row in `datasets_indexpause`: the import engine inserts one, writes samples,
annotations and the matching index rows in bulk, bumps the revision once, and deletes the row
before committing. The row is never visible to another transaction (uncommitted on
PostgreSQL; SQLite has one writer at a time), so other writers' triggers always run.
"""
import importlib

from django.db import migrations

_previous = importlib.import_module("apps.datasets.migrations.0003_sample_label_triggers")

SQLITE = [
    """CREATE TRIGGER datasets_annotation_index_insert AFTER INSERT ON datasets_annotation
    WHEN NOT EXISTS (SELECT 1 FROM datasets_indexpause)
    BEGIN
      INSERT OR IGNORE INTO datasets_samplelabel (dataset_id, label_id, sample_id, usage, label_status, created_at)
        SELECT NEW.dataset_id, NEW.label_id, NEW.sample_id, s.usage, s.label_status, s.created_at
        FROM datasets_sample s WHERE s.id = NEW.sample_id AND NEW.label_id IS NOT NULL;
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
    """CREATE TRIGGER datasets_annotation_index_delete AFTER DELETE ON datasets_annotation
    WHEN NOT EXISTS (SELECT 1 FROM datasets_indexpause)
    BEGIN
      DELETE FROM datasets_samplelabel WHERE sample_id = OLD.sample_id AND label_id = OLD.label_id
        AND NOT EXISTS (SELECT 1 FROM datasets_annotation a WHERE a.sample_id = OLD.sample_id
                        AND a.label_id = OLD.label_id);
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = OLD.dataset_id;
    END""",
    """CREATE TRIGGER datasets_annotation_index_update AFTER UPDATE OF label_id, sample_id ON datasets_annotation
    WHEN NOT EXISTS (SELECT 1 FROM datasets_indexpause)
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
    WHEN NOT EXISTS (SELECT 1 FROM datasets_indexpause)
    BEGIN
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
    """CREATE TRIGGER datasets_sample_revision_delete AFTER DELETE ON datasets_sample
    WHEN NOT EXISTS (SELECT 1 FROM datasets_indexpause)
    BEGIN
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = OLD.dataset_id;
    END""",
    """CREATE TRIGGER datasets_sample_index_update AFTER UPDATE OF usage, label_status, hard ON datasets_sample
    WHEN NOT EXISTS (SELECT 1 FROM datasets_indexpause)
    BEGIN
      UPDATE datasets_samplelabel SET usage = NEW.usage, label_status = NEW.label_status
        WHERE sample_id = NEW.id AND (usage != NEW.usage OR label_status != NEW.label_status);
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
    END""",
]

# The trigger functions gain the pause check; the triggers themselves are unchanged.
POSTGRES = [
    """CREATE OR REPLACE FUNCTION datasets_annotation_index() RETURNS trigger AS $$
    DECLARE ds bigint;
    BEGIN
      IF EXISTS (SELECT 1 FROM datasets_indexpause) THEN RETURN NULL; END IF;
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
    """CREATE OR REPLACE FUNCTION datasets_sample_index() RETURNS trigger AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM datasets_indexpause) THEN RETURN NULL; END IF;
      UPDATE datasets_samplelabel SET usage = NEW.usage, label_status = NEW.label_status
        WHERE sample_id = NEW.id AND (usage <> NEW.usage OR label_status <> NEW.label_status);
      UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION datasets_sample_revision() RETURNS trigger AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM datasets_indexpause) THEN RETURN NULL; END IF;
      IF TG_OP = 'DELETE' THEN
        UPDATE datasets_dataset SET revision = revision + 1 WHERE id = OLD.dataset_id;
      ELSE
        UPDATE datasets_dataset SET revision = revision + 1 WHERE id = NEW.dataset_id;
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
]


def _run(schema_editor, statements):
    for statement in statements:
        schema_editor.execute(statement)


def forward(apps, schema_editor):
    schema_editor.execute("CREATE TABLE datasets_indexpause (id integer PRIMARY KEY)")
    if schema_editor.connection.vendor == "sqlite":
        _run(schema_editor, _previous.SQLITE_DROP + SQLITE)
    else:
        _run(schema_editor, POSTGRES)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        _run(schema_editor, _previous.SQLITE_DROP + _previous.SQLITE)
    else:
        _run(schema_editor, [s for s in _previous.POSTGRES if "RETURNS trigger" in s])
    schema_editor.execute("DROP TABLE datasets_indexpause")


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_sample_label_triggers")]

    operations = [migrations.RunPython(forward, backward)]
