import pytest

from hypotez_providers import InvalidInput, Message, validate_messages


def test_valid_messages_become_plain_dictionaries():
    result = validate_messages(
        [
            {"role": "system", "content": "Be brief."},
            Message(role="user", content="Hi"),
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                ],
            },
        ]
    )
    assert result[0] == {"role": "system", "content": "Be brief."}
    assert result[1] == {"role": "user", "content": "Hi"}
    assert result[2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }


@pytest.mark.parametrize("role", ["system", "user", "assistant", "tool", "developer"])
def test_every_documented_role_is_accepted(role):
    message = {"role": role, "content": "x"}
    if role == "tool":
        message["tool_call_id"] = "call_1"  # a tool message answers one call
    assert validate_messages([message])[0]["role"] == role


@pytest.mark.parametrize(
    ("messages", "field", "words"),
    [
        ([{"role": "robot", "content": "x"}], "messages[0].role", "'user'"),
        ([], "messages", "at least one message"),
        ("hello", "messages", "must be a list"),
        ([{"role": "user", "content": 5}], "messages[0].content", "text or a list of parts"),
        ([{"role": "user"}], "messages[0].content", "required"),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "video"}]}],
            "messages[1].content[0]",
            "'video'",
        ),
        (
            [{"role": "user", "content": [{"type": "text"}]}],
            "messages[0].content[0].text",
            "required",
        ),
        ([{"role": "user", "content": "x", "colour": "red"}], "messages[0].colour", "remove it"),
    ],
)
def test_bad_messages_name_the_field_and_the_fix(messages, field, words):
    with pytest.raises(InvalidInput) as caught:
        validate_messages(messages)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert words in str(caught.value)
