"""People: the gallery's faces grouped into persons, named, merged and corrected by a user.

Grouping runs on demand (``POST /people/cluster``, or ``python -m indexer cluster``); every
write here runs on the engine's single writer thread, like the gallery's own writes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from indexer.people import DEFAULT_MIN_FACES, grouping_threshold
from indexer.people_cluster import group_faces
from indexer.people_store import PeopleStore
from indexer.store import DB_NAME
from service.api.deps import EngineDep, require_api_key
from service.api.routes import PROTECTED, Responses, errors
from service.engine import Engine
from service.people_schemas import (
    ClusterPublic,
    FaceMovedPublic,
    PeoplePublic,
    PersonFacesPublic,
    PersonMerge,
    PersonPublic,
    PersonUpdate,
)
from service.schemas import ErrorPublic, GalleryEntryPublic

router = APIRouter(
    prefix="/people",
    tags=["people"],
    dependencies=[Depends(require_api_key)],
    responses=PROTECTED,
)
NO_PERSON: Responses = {
    404: {"model": ErrorPublic, "description": "There is no person with this id."}
}
PersonId = Annotated[
    int, Path(ge=1, le=2**63 - 1, description="A person's id, as GET /people lists them.")
]


def get_people(request: Request, engine: EngineDep) -> PeopleStore:
    """One PeopleStore per app, over the gallery the engine serves."""
    path = engine.settings.data_dir / DB_NAME
    people: PeopleStore | None = getattr(request.app.state, "people", None)
    if people is None or people.path != path:
        people = request.app.state.people = PeopleStore(path)
    return people


PeopleDep = Annotated[PeopleStore, Depends(get_people)]


def no_person(person_id: int) -> HTTPException:
    return HTTPException(404, f"There is no person with id {person_id}.")


@router.get("", response_model=PeoplePublic, summary="List persons")
async def list_people(
    engine: EngineDep,
    people: PeopleDep,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PeoplePublic:
    """Persons with most faces first, each with the face that shows it best."""
    found, count, unassigned = await engine.offload(people.people, offset, limit)
    data = [PersonPublic.of(p) for p in found]
    return PeoplePublic(data=data, count=count, unassigned=unassigned, offset=offset, limit=limit)


@router.post("/cluster", response_model=ClusterPublic, summary="Group faces into persons")
async def cluster_people(
    engine: EngineDep,
    people: PeopleDep,
    full: Annotated[bool, Query(description="Re-cluster every face, not just new ones.")] = False,
    min_faces: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_MIN_FACES,
    threshold: Annotated[
        float | None,
        Query(
            ge=-1,
            le=1,
            description="Linking cosine; default: the model's calibrated one "
            "at 1 in 1,000 false accepts.",
        ),
    ] = None,
) -> ClusterPublic:
    """New faces join a person or wait for company; ``full`` groups every face again."""
    cut = grouping_threshold(engine.embedder.info, threshold)
    summary = await engine.write(group_faces, people.path, cut, min_faces, full)
    return ClusterPublic(**summary.as_dict())


@router.get(
    "/{person_id:int}", response_model=PersonFacesPublic, responses=NO_PERSON, summary="One person"
)
async def read_person(
    engine: EngineDep,
    people: PeopleDep,
    person_id: PersonId,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PersonFacesPublic:
    person = await engine.offload(people.person, person_id)
    if person is None:
        raise no_person(person_id)
    ids = await engine.offload(people.face_ids, person_id, offset, limit)
    faces = [GalleryEntryPublic.of(r) for r in await engine.offload(_records, engine, ids)]
    return PersonFacesPublic(
        **PersonPublic.of(person).model_dump(), faces=faces, offset=offset, limit=limit
    )


@router.patch(
    "/{person_id:int}",
    response_model=PersonPublic,
    responses={**NO_PERSON, **errors(400, 413)},
    summary="Name a person",
)
async def name_person(
    engine: EngineDep, people: PeopleDep, person_id: PersonId, body: PersonUpdate
) -> PersonPublic:
    """The name becomes the label of every face of the person (``null`` clears both)."""
    if not await engine.write(_name, engine, people, person_id, body.label):
        raise no_person(person_id)
    return await _public(engine, people, person_id)


@router.post(
    "/{person_id:int}/merge",
    response_model=PersonPublic,
    responses={**NO_PERSON, **errors(400, 413)},
    summary="Merge another person into this one",
)
async def merge_person(
    engine: EngineDep, people: PeopleDep, person_id: PersonId, body: PersonMerge
) -> PersonPublic:
    """The other person's faces move here (and take this person's name, if it has one)."""
    if body.other == person_id:
        raise HTTPException(400, "A person cannot be merged into itself.")
    for wanted in (person_id, body.other):
        if await engine.offload(people.person, wanted) is None:
            raise no_person(wanted)
    await engine.write(_merge, engine, people, person_id, body.other)
    return await _public(engine, people, person_id)


@router.delete(
    "/{person_id:int}/faces/{face_id}",
    response_model=FaceMovedPublic,
    responses={404: {"model": ErrorPublic, "description": "No such person, or not its face."}},
    summary="Move a face out of a person",
)
async def move_face_out(
    engine: EngineDep, people: PeopleDep, person_id: PersonId, face_id: str
) -> FaceMovedPublic:
    """The face leaves the person for good (later grouping leaves it alone) and loses the
    person's name; the gallery keeps it."""
    if await engine.offload(people.person, person_id) is None:
        raise no_person(person_id)
    if not await engine.write(_move_out, engine, people, person_id, face_id):
        raise HTTPException(404, f"The face {face_id!r} is not one of person {person_id}.")
    person = await engine.offload(people.person, person_id)
    return FaceMovedPublic(face_id=face_id, person=PersonPublic.of(person) if person else None)


# ----------------------------------------------------------------- writer-thread work
def _name(engine: Engine, people: PeopleStore, person_id: int, label: str | None) -> bool:
    if not people.set_label(person_id, label):
        return False
    for face in people.face_ids(person_id):
        engine.store.update(face, label=label, clear_label=label is None)
    return True


def _merge(engine: Engine, people: PeopleStore, into: int, other: int) -> None:
    """The merged person keeps its name, or takes the other's; all its faces get it."""
    names = [p.label for p in (people.person(into), people.person(other)) if p and p.label]
    people.merge(into, other)
    if names:
        _name(engine, people, into, names[0])


def _move_out(engine: Engine, people: PeopleStore, person_id: int, face_id: str) -> bool:
    person = people.person(person_id)
    if not people.move_out(person_id, face_id):
        return False
    record = engine.store.get(face_id)
    if person is not None and person.label is not None and record.label == person.label:
        engine.store.update(face_id, clear_label=True)
    return True


def _records(engine: Engine, ids: list[str]) -> list:
    return [engine.store.get(face) for face in ids]


async def _public(engine: Engine, people: PeopleStore, person_id: int) -> PersonPublic:
    person = await engine.offload(people.person, person_id)
    if person is None:
        raise no_person(person_id)
    return PersonPublic.of(person)
