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
