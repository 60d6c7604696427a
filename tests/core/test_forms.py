"""ConfirmNameForm: the server-side half of typed-name confirmation."""
from apps.core.forms import ConfirmNameForm


def test_exact_name_confirms():
    form = ConfirmNameForm({"confirm_name": "raw-images"}, expected="raw-images")
    assert form.is_valid()
    assert form.cleaned_data["confirm_name"] == "raw-images"


def test_near_misses_are_refused_with_the_expected_name():
    for typed in ["Raw-images", "raw-images ", " raw-images", "raw-image"]:
        form = ConfirmNameForm({"confirm_name": typed}, expected="raw-images")
        assert not form.is_valid()
        assert form.errors["confirm_name"] == [f'Type the name "raw-images" exactly to confirm; you typed "{typed}".']


def test_missing_name_is_required():
    form = ConfirmNameForm({}, expected="raw-images")
    assert not form.is_valid()
    assert form.errors["confirm_name"] == ["This field is required."]
