"""Connexion validators whose messages say which parameter is wrong."""
from __future__ import annotations

from connexion.validators import ParameterValidator


class NamedParameterValidator(ParameterValidator):
    """Connexion reports '0 is less than the minimum of 1'; this says 'limit: 0 is less than ...'."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        error = ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        if error:
            sentence = str(error).split("\n\nFailed validating", 1)[0]
            return f"{parameter_type} parameter '{param['name']}': {sentence}"
        return error
