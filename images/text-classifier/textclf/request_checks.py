"""A Flask blueprint that checks prediction requests before Seldon decodes them.

seldon-core registers `model_error_handler` (a Blueprint) on its REST app. Its hook runs before each
`POST /api/v1.0/predictions` (and the older `/predict`, `/api/v0.1/predictions`) with a JSON body and
answers 400 with Seldon's error status for a body that is not valid JSON or holds anything but texts.
Without it, Seldon would answer "Can't find JSON in data" for broken JSON, silently turn `["a", 1]` into
strings, and report ragged arrays as an internal error (500).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, request
from seldon_core.flask_utils import SeldonMicroserviceException

from textclf.validation import EXAMPLE, InputError, texts_from_request

PREDICT_PATHS = frozenset({"/predict", "/api/v1.0/predictions", "/api/v0.1/predictions"})


def build_request_checks(max_text_chars: int, max_batch: int, on_reject: Callable[[], None]) -> Blueprint:
    """The blueprint; `on_reject` is called for every request it turns away (the model counts them)."""
    blueprint = Blueprint("text_classifier_request_checks", __name__)

    @blueprint.before_app_request
    def check_prediction_request() -> None:
        if request.method != "POST" or request.path not in PREDICT_PATHS or not request.is_json:
            return  # form and multipart bodies: Seldon decodes them and predict() checks the texts
        raw = request.get_data(cache=True)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            on_reject()
            raise SeldonMicroserviceException(
                f"the request body is not valid JSON ({exc}); send e.g. {EXAMPLE}", status_code=400
            ) from None
        try:
            texts_from_request(body, max_text_chars, max_batch)
        except InputError as exc:
            on_reject()
            raise SeldonMicroserviceException(str(exc), status_code=400) from None

    return blueprint
