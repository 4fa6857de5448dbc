"""Request and response bodies of ``/people``: persons found among the gallery's faces."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from indexer.people_store import Person
from service.schemas import GalleryEntryPublic


class PersonPublic(BaseModel):
    id: int
    label: str | None = Field(description="The person's name; null until someone names it.")
    face_count: int = Field(description="How many gallery faces belong to the person.")
    cover_id: str = Field(description="The gallery id of the face that shows the person best.")
    image_url: str = Field(description="Where that face's crop (JPEG) is served.")

    @classmethod
    def of(cls, person: Person) -> PersonPublic:
        return cls(
            id=person.id,
            label=person.label,
            face_count=person.faces,
            cover_id=person.cover,
            image_url=f"/gallery/{person.cover}/image",
        )


class PeoplePublic(BaseModel):
    data: list[PersonPublic]
    count: int = Field(description="Persons in all, over all pages.")
    unassigned: int = Field(description="Gallery faces in no person.")
    offset: int
    limit: int


class PersonFacesPublic(PersonPublic):
    faces: list[GalleryEntryPublic] = Field(description="The person's faces, a page of them.")
    offset: int
    limit: int


class PersonUpdate(BaseModel):
    """``"label": null`` clears the name (and the label of the person's faces)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(..., min_length=1, max_length=200)


class PersonMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other: int = Field(
        ge=1, le=2**63 - 1, description="The person whose faces move into this one; it disappears."
    )


class FaceMovedPublic(BaseModel):
    face_id: str
    person: PersonPublic | None = Field(description="The person after the move; null if empty.")


class ClusterPublic(BaseModel):
    faces: int
    persons: int
    assigned: int
    unassigned: int
    new_persons: int
    joined: int = Field(description="Faces that joined a person in this run.")
    threshold: float = Field(description="The same-person cosine similarity used.")
    min_faces: int
    full: bool
    seconds: float
