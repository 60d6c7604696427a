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


def test_path_length_limit_counts_bucket_and_key():
    key = "/".join(["k" * 100] * 10) + "/" + "k" * 9  # 1019 characters in names of at most 100
    assert len(f"bkt/{key}") == 1023
    assert paths.parse(f"storage://bkt/{key}").key == key
    with pytest.raises(ValidationError) as exc:
        paths.parse(f"storage://bkt/{key}x")
    assert exc.value.messages == ["The path has 1024 characters; at most 1023 are allowed."]


@pytest.mark.parametrize("key, message", [
    ("../etc", 'The path must not contain "." or ".." folders.'),
    ("a/./b", 'The path must not contain "." or ".." folders.'),
    (".hidden", 'A path must not start or end with "." or "/".'),
    ("a/.b", 'The name ".b" must not start or end with ".".'),
    ("a\nb", "The path contains control characters."),
    ("a\x7fb", "The path contains control characters."),
    ("a//b", "The path contains an empty folder name (//)."),
])
def test_key_rules_have_specific_messages(key, message):
    with pytest.raises(ValidationError) as exc:
        paths.validate_key(key)
    assert exc.value.messages == [message]


def test_a_single_name_is_capped_at_255_bytes():
    assert paths.validate_key("é" * 127)  # 254 bytes
    with pytest.raises(ValidationError) as exc:
        paths.validate_key("ok/" + "é" * 128)
    assert exc.value.messages == [f'The name "{"é" * 40}…" is 256 bytes long; one folder or file name may have at '
                                  "most 255."]


def test_trailing_slash_is_ignored_and_bucket_root_has_empty_key():
    assert paths.parse("storage://bkt/a/b/") == paths.StoragePath("bkt", "a/b")
    root = paths.parse("storage://bkt")
    assert (root.key, root.uri, root.name) == ("", "storage://bkt", "bkt")
    assert root.child("x").uri == "storage://bkt/x"


def test_upload_name_other_rules_name_the_file():
    with pytest.raises(ValidationError) as exc:
        paths.validate_upload_name("a:b.txt")
    assert exc.value.messages == ['The file name "a:b.txt" is not allowed: The path contains :; these characters '
                                  'are not allowed: \\ : * ? " < > |']
    with pytest.raises(ValidationError) as exc:
        paths.validate_upload_name("dir/file.txt")
    assert exc.value.messages == ['The file name "dir/file.txt" is not allowed: A name must not contain "/".']
    assert paths.validate_upload_name("cat_01-v2.jpg") == "cat_01-v2.jpg"


def test_fast_key_check_agrees_with_the_rules(monkeypatch):
    """The one-regex fast path never accepts a key the rule-by-rule checks refuse."""
    import random

    def slow_ok(key: str) -> bool:
        with monkeypatch.context() as patch:
            patch.setattr(paths, "SAFE_KEY_RE", type("Never", (), {"fullmatch": staticmethod(lambda _k: None)})())
            try:
                paths.validate_key(key)
            except ValidationError:
                return False
            return True

    alphabet = list("ab.-_ /\\:*?\"<>|\x01\x7fé😀")
    rng = random.Random(7)
    keys = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(5000)]
    keys += ["x" * 255, "x" * 256, "a/" + "y" * 255, "a/" + "y" * 256, "img/00001.jpg", "a b/c (1).png"]
    fast_hits = 0
    for key in keys:
        if paths.SAFE_KEY_RE.fullmatch(key):
            fast_hits += 1
            assert slow_ok(key), key
        try:
            paths.validate_key(key)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == slow_ok(key), key
    assert fast_hits > 100
