"""A client generated from docs/openapi.json reads real responses, and
still reads them the day a response gains a field.

Usage: python3 .ci/openapi-client-check.py MODELS_DIR GATEWAY TOKEN

MODELS_DIR holds pydantic models that datamodel-code-generator made from
the document (as an integrator's build would). The script reads
GET /v1/users and GET /v1/activity from the running gateway, parses each
with its generated model, then adds a field the document does not know to
every object of the response and parses it again.
"""

import importlib
import json
import os
import sys
import urllib.request


def fetch(gateway, token, path):
    request = urllib.request.Request(
        gateway + path, headers={"authorization": "Bearer " + token}
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def with_a_new_field(value):
    if isinstance(value, dict):
        grown = {key: with_a_new_field(item) for key, item in value.items()}
        grown["fieldFromTheFuture"] = {"added": "in a later version"}
        return grown
    if isinstance(value, list):
        return [with_a_new_field(item) for item in value]
    return value


def main(models_dir, gateway, token):
    # The walk-through's addresses are at .test (RFC 6761, reserved for
    # tests), which email-validator refuses by default; real ones are not.
    import email_validator

    email_validator.SPECIAL_USE_DOMAIN_NAMES = [
        name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name != "test"
    ]
    # The generated package imports its parts relatively: import it whole.
    parent, package = os.path.split(os.path.abspath(models_dir))
    sys.path.insert(0, parent)
    models = importlib.import_module(f"{package}.wowchat.users.v1")

    checks = [
        ("/v1/users?pageSize=5", models.ListUsersResponse),
        ("/v1/activity?pageSize=5", models.ListActivityResponse),
        ("/v1/invitations?pageSize=5", models.ListInvitationsResponse),
    ]
    for path, model in checks:
        body = fetch(gateway, token, path)
        parsed = model.model_validate(body)
        model.model_validate(with_a_new_field(body))
        print(f"{model.__name__}: parsed as is and with a new field ({path})")
    # Requests stay strict, as documented: a typo is caught client-side.
    try:
        models.InviteUserRequest.model_validate(
            {"email": "a@example.com", "role": "agent", "rolee": "admin"}
        )
    except Exception:  # pydantic.ValidationError
        print("InviteUserRequest: an unknown field is refused")
    else:
        sys.exit("a request model accepted an unknown field")
    return parsed


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
