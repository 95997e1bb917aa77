# A provider module in the old gpt4free style, shaped like the seed's Gravityengine.py.
# It is kept unedited in spirit: module-level metadata, params built by introspection, and a
# _create_completion generator that calls requests itself. Tests point `url` at a fake upstream.
import os
from typing import get_type_hints

import requests

url = 'https://gpt4.xunika.uk/'
model = ['gpt-3.5-turbo-16k', 'gpt-3.5-turbo-0613']
supports_stream = True
needs_auth = False


def _create_completion(model: str, messages: list, stream: bool, **kwargs):
    headers = {
        'Content-Type': 'application/json',
    }
    data = {
        'model': model,
        'temperature': 0.7,
        'presence_penalty': 0,
        'messages': messages,
    }
    data.update(kwargs)
    response = requests.post(url + '/api/openai/v1/chat/completions', headers=headers,
                             json=data, stream=True)
    response.raise_for_status()
    yield response.json()['choices'][0]['message']['content']


params = f'g4f.Providers.{os.path.basename(__file__)[:-3]} supports: ' + \
    '(%s)' % ', '.join([f"{name}: {get_type_hints(_create_completion)[name].__name__}" for name in _create_completion.__code__.co_varnames[:_create_completion.__code__.co_argcount]])
