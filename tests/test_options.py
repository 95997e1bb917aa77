import pytest

from hypotez_providers import InvalidInput, validate_options


def test_only_options_that_were_set_go_on_the_wire_with_extras_last():
    options = validate_options({"temperature": 0.2, "stop": ["\n"], "extra": {"top_k": 5}})
    assert options.wire() == {"temperature": 0.2, "stop": ["\n"], "top_k": 5}


def test_no_options_send_nothing():
    assert validate_options({}).wire() == {}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"seed": "abc"}, "seed"),
    ],
)
def test_out_of_range_options_name_the_field(options, field):
    with pytest.raises(InvalidInput) as caught:
        validate_options(options)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_an_unknown_option_suggests_extra():
    with pytest.raises(InvalidInput) as caught:
        validate_options({"top_k": 3})
    assert caught.value.field == "top_k"
    assert "extra={'top_k': ...}" in str(caught.value)


@pytest.mark.parametrize("name", ["model", "messages", "stream", "stream_options"])
def test_extra_cannot_override_the_fields_the_library_sets(name):
    with pytest.raises(InvalidInput) as caught:
        validate_options({"extra": {name: "x"}})
    assert caught.value.field == f"extra.{name}"
    assert "cannot override model, messages, stream, stream_options" in str(caught.value)


def test_extra_may_override_a_named_option_on_purpose():
    options = validate_options({"max_tokens": 10, "extra": {"max_tokens": 20, "top_k": 5}})
    assert options.wire() == {"max_tokens": 20, "top_k": 5}


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"x": float("nan")}, "extra.x", "numbers must be finite"),
        ({"x": float("inf")}, "extra.x", "numbers must be finite"),
        ({"x": object()}, "extra.x", "type object cannot be sent as JSON"),
        ({"x": {"y": [0, (1, {2: 3})]}}, "extra.x.y[1][1]", "key 2 is not a string"),
        ({"x": {"y": [0, {"z": {1, 2}}]}}, "extra.x.y[1].z", "type set"),
    ],
)
def test_extra_must_be_strict_json_and_the_error_names_the_place(extra, field, words):
    with pytest.raises(InvalidInput) as caught:
        validate_options({"extra": extra})
    assert caught.value.field == field
    assert words in str(caught.value)


def test_extra_that_contains_itself_is_refused_not_recursed_forever():
    loop = []
    loop.append(loop)
    with pytest.raises(InvalidInput, match="nested more than 64 deep") as caught:
        validate_options({"extra": {"loop": loop}})
    assert caught.value.field == "extra.loop"


def test_strict_json_extra_is_kept_as_given():
    extra = {"a": None, "b": True, "c": 3, "d": 2.5, "e": "s", "f": [1, {"g": ()}]}
    assert validate_options({"extra": extra}).extra == extra


def test_options_built_directly_are_held_to_the_same_rules():
    from pydantic import ValidationError

    from hypotez_providers import CompletionOptions

    with pytest.raises(ValidationError, match=r"extra\.stream"):
        CompletionOptions(extra={"stream": True})
    with pytest.raises(ValidationError, match=r"extra\.x"):
        CompletionOptions(extra={"x": float("nan")})
