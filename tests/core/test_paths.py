import pytest
from django.core.exceptions import ValidationError

from apps.core import paths


@pytest.mark.parametrize(
    "uri",
    ["storage://bkt/../etc", "/etc/passwd", "storage://bkt/a:b", "storage://bkt/.hidden", "storage://bkt/a/b.",
     "storage://bkt/a//b", "s3://bkt/a", "storage://BK/a", "storage://bkt/" + "a" * 1100, 'storage://bkt/a"b'],
)
def test_bad_paths_are_refused(uri):
    with pytest.raises(ValidationError):
        paths.parse(uri)


def test_good_path_round_trips():
    p = paths.parse("storage://my-bucket/a/b/c")
    assert (p.bucket, p.key, p.uri) == ("my-bucket", "a/b/c", "storage://my-bucket/a/b/c")
    assert p.parent.key == "a/b"
    assert p.is_within(paths.parse("storage://my-bucket/a"))
    assert not paths.parse("storage://my-bucket/ab").is_within(paths.parse("storage://my-bucket/a"))


@pytest.mark.parametrize("name", ["my cat.jpg", "a+b.png", "tab\there.txt"])
def test_upload_names_with_space_plus_tab_are_refused(name):
    with pytest.raises(ValidationError) as exc:
        paths.validate_upload_name(name)
    assert name in exc.value.messages[0]
