"""The draft an LLM returns for a description: requirements, questions, and the two blueprints.

The draft is untrusted data. Its requirement ids are constrained identifiers (they are the
only text of the draft that reaches a YAML comment); its blueprints stay plain JSON values
here, because the compiler (Stage 1C) is what judges them, with file:line diagnostics that
can be fed back to the model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from autocoder.blueprint.models import Architecture, Deployment

RequirementId = Annotated[str, StringConstraints(pattern=r"^R[1-9][0-9]{0,3}$")]
# what a requirement can be served by: a component name, or `policy.<section>`
Target = Annotated[str, StringConstraints(pattern=r"^(policy\.)?[a-z][a-z0-9_]{0,62}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requirement(Strict):
    id: RequirementId
    text: Text
    kind: Literal["functional", "quality", "security", "scalability"]


class Ambiguity(Strict):
    question: Text
    options: Annotated[list[Text], Field(max_length=10)] = Field(default_factory=list)


class Draft(Strict):
    """What the model answers. `architecture` and `deployment` have the blueprint models' own
    JSON shapes (the response schema says so); `serves` maps components and policy sections to
    the requirements they address; `impossible` is the reason no system can meet the request."""

    requirements: Annotated[list[Requirement], Field(max_length=500)] = Field(default_factory=list)
    ambiguities: Annotated[list[Ambiguity], Field(max_length=20)] = Field(default_factory=list)
    impossible: Annotated[str, StringConstraints(max_length=2000)] | None = None
    serves: dict[Target, Annotated[list[RequirementId], Field(max_length=500)]] = Field(default_factory=dict)
    architecture: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None


def response_schema() -> dict[str, Any]:
    """The JSON schema of the answer: the Draft, with the blueprint models' schemas in place
    of the two free-form blueprint objects (not `strict`: servers reject such schemas)."""
    schema = Draft.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for key, model in (("architecture", Architecture), ("deployment", Deployment)):
        sub = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[model.__name__] = sub
        schema["properties"][key] = {"anyOf": [{"$ref": f"#/$defs/{model.__name__}"}, {"type": "null"}]}
    return {"name": "blueprint_draft", "strict": False, "schema": schema}
