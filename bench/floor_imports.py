"""Never imported by the benchmark itself: bench/child.py runs this file, inside its timing, to
measure the floor of the handlers' cold import (bench/memory_import.py, not judged). It is what
every handler but the authorizer stands on before any code of ours: boto3, Powertools' Logger and
Metrics, and pydantic with one model class. The class counts because the first `BaseModel`
subclass, whichever module defines it, imports the rest of pydantic's schema machinery
(`pydantic.types`, `annotated_types`, ...) and builds a schema: about 30 ms here that
`from pydantic import BaseModel` alone does not show.
"""

import boto3  # noqa: F401
from aws_lambda_powertools import Logger, Metrics  # noqa: F401
from pydantic import BaseModel, Field


class Floor(BaseModel):
    count: int = Field(default=0, ge=0)
