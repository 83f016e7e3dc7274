"""An argilla-server search engine that answers every query from the SQL database itself.

Runs inside the argilla-server virtualenv (imported by ``launcher.py``), never in curate's
own environment: it imports ``argilla_server`` and nothing from curate.

The database already holds records, responses, suggestions, metadata, vectors and record
status, so every write hook is a no-op and there is no index to keep consistent. Queries
load the dataset's rows and evaluate filters, text search and sorting in Python: O(N) per
query, fine for the tens of thousands of records a laptop or CI labels.

Differences from Elasticsearch: text search is lower-cased ``\\w+`` tokens with AND across
terms and ``prefix*`` (no stemming, phrases or OR); the per-user queue order is a
deterministic md5 shuffle seeded by the user id (ES uses a different random order).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, SimilarityOrder, SortOrder
from argilla_server.models import Question, Record, Response, Suggestion, Vector
from argilla_server.search_engine import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from sqlalchemy import select

NAME = "sqlscan"
_WORD = re.compile(r"\w+")


@dataclass
class _Row:
    id: Any
    external_id: str | None
    fields: dict
    metadata: dict
    status: str
    inserted_at: datetime
    updated_at: datetime
    responses: list[tuple[str, str, dict]] = field(default_factory=list)  # (user_id, status, values)
    suggestions: dict[str, dict] = field(default_factory=dict)  # question name -> value/score/agent


async def _rows(dataset_id: Any) -> list[_Row]:
    async with AsyncSessionLocal() as db:
        records = await db.execute(
            select(
                Record.id,
                Record.external_id,
                Record.fields,
                Record.metadata_,
                Record.status,
                Record.inserted_at,
                Record.updated_at,
            ).where(Record.dataset_id == dataset_id)
        )
        rows = {r[0]: _Row(r[0], r[1], r[2] or {}, r[3] or {}, str(r[4]), r[5], r[6]) for r in records}
        responses = await db.execute(
            select(Response.record_id, Response.user_id, Response.status, Response.values)
            .join(Record, Record.id == Response.record_id)
            .where(Record.dataset_id == dataset_id)
        )
        for record_id, user_id, status, values in responses:
            rows[record_id].responses.append((str(user_id), str(status), values or {}))
        suggestions = await db.execute(
            select(Suggestion.record_id, Question.name, Suggestion.value, Suggestion.score, Suggestion.agent)
            .join(Question, Question.id == Suggestion.question_id)
            .where(Question.dataset_id == dataset_id)
        )
        for record_id, question, value, score, agent in suggestions:
            if record_id in rows:
                rows[record_id].suggestions[question] = {"value": value, "score": score, "agent": agent}
    return list(rows.values())


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _in_range(value: Any, flt: RangeFilter) -> bool:
    values = [v for v in _as_list(value) if isinstance(v, (int, float, datetime))]
    values = [v.timestamp() * 1000 if isinstance(v, datetime) else v for v in values]  # ES dates: epoch ms
    return any((flt.ge is None or v >= flt.ge) and (flt.le is None or v <= flt.le) for v in values)


def _matches_values(value: Any, flt: TermsFilter | RangeFilter) -> bool:
    if isinstance(flt, RangeFilter):
        return _in_range(value, flt)
    items = [v.get("value") if isinstance(v, dict) else v for v in _as_list(value)]  # ranking: [{value, rank}]
    return any(str(v) in flt.values for v in items if v is not None)


def _response_match(row: _Row, flt: TermsFilter | RangeFilter) -> bool:
    scope: ResponseFilterScope = flt.scope
    user = str(scope.user.id) if scope.user else None
    mine = [r for r in row.responses if user is None or r[0] == user]
    if scope.question:
        return any(_matches_values((values.get(scope.question) or {}).get("value"), flt) for _, _, values in mine)
    if scope.property == "status" and isinstance(flt, TermsFilter):
        wanted = set(flt.values)
        return ("pending" in wanted and not mine) or any(status in wanted for _, status, _ in mine)
    raise ValueError(f"sqlscan cannot filter on response scope {scope}")


def _scope_value(row: _Row, scope: Any) -> Any:
    if isinstance(scope, MetadataFilterScope):
        return row.metadata.get(scope.metadata_property)
    if isinstance(scope, SuggestionFilterScope):
        return (row.suggestions.get(scope.question) or {}).get(scope.property)
    if isinstance(scope, RecordFilterScope):
        return getattr(row, scope.property, None)
    if isinstance(scope, ResponseFilterScope):  # sort by a response value: the user's (or first) answer
        user = str(scope.user.id) if scope.user else None
        for uid, status, values in row.responses:
            if user is None or uid == user:
                return status if scope.property == "status" else (values.get(scope.question) or {}).get("value")
        return None
    raise ValueError(f"sqlscan cannot use the scope {scope}")


def _matches(row: _Row, flt: Any) -> bool:
    if flt is None:
        return True
    if isinstance(flt, AndFilter):
        return all(_matches(row, f) for f in flt.filters)
    if isinstance(flt.scope, ResponseFilterScope):
        return _response_match(row, flt)
    value = _scope_value(row, flt.scope)
    return value is not None and _matches_values(str(value) if hasattr(value, "value") else value, flt)


def _text_score(row: _Row, query: TextQuery | str | None) -> float | None:
    """Sum of (1 + log tf) over the query terms, or None when a term is missing (AND semantics)."""
    if query is None:
        return 1.0
    q, field_name = (query, None) if isinstance(query, str) else (query.q, query.field)
    values = [row.fields.get(field_name)] if field_name else list(row.fields.values())
    words = _WORD.findall(" ".join(v if isinstance(v, str) else json.dumps(v) for v in values if v).lower())
    score = 0.0
    for term in q.lower().split():
        stem = term.rstrip("*")
        hits = sum(1 for w in words if (w.startswith(stem) if term.endswith("*") else w == stem))
        if not hits:
            return None
        score += 1 + math.log(hits)
    return score


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (1, "")
    if hasattr(value, "value"):
        value = value.value
    return (0, value.timestamp() if isinstance(value, datetime) else value)


def _order(rows: list[tuple[float, _Row]], sort: list | None, user_id: Any) -> list[tuple[float, _Row]]:
    if not sort:
        if user_id:  # a stable per-user shuffle, as ES does with random_score seeded by the user
            return sorted(rows, key=lambda sr: hashlib.md5(f"{user_id}{sr[1].id}".encode()).hexdigest())
        return sorted(rows, key=lambda sr: (-sr[0], sr[1].inserted_at))
    for order in reversed(sort):  # stable sorts, last key first
        desc = order.order == SortOrder.desc
        rows = sorted(rows, key=lambda sr: _sort_key(_scope_value(sr[1], order.scope)), reverse=desc)
    return rows


@SearchEngine.register(NAME)
class SqlScanSearchEngine(SearchEngine):
    """Search engine that reads the SQL database; every index write is a no-op."""

    @classmethod
    async def new_instance(cls) -> SqlScanSearchEngine:
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"engine": NAME, "version": "1", "description": "queries the SQL database directly"}

    async def create_index(self, dataset) -> None: ...
    async def delete_index(self, dataset) -> None: ...
    async def configure_metadata_property(self, dataset, metadata_property) -> None: ...
    async def configure_index_vectors(self, vector_settings) -> None: ...
    async def index_records(self, dataset, records) -> None: ...
    async def partial_record_update(self, record, **update) -> None: ...
    async def delete_records(self, dataset, records) -> None: ...
    async def update_record_response(self, response) -> None: ...
    async def delete_record_response(self, response) -> None: ...
    async def update_record_suggestion(self, suggestion) -> None: ...
    async def delete_record_suggestion(self, suggestion) -> None: ...

    async def get_dataset_progress(self, dataset) -> dict:
        if dataset.is_draft:
            return {}
        statuses = [row.status for row in await _rows(dataset.id)]
        return {"total": len(statuses), **{s: statuses.count(s) for s in set(statuses)}}

    async def get_dataset_user_progress(self, dataset, user) -> dict:
        if dataset.is_draft:
            return {}
        uid = str(user.id)
        statuses = [status for row in await _rows(dataset.id) for u, status, _ in row.responses if u == uid]
        return {"total": len(statuses), **{s: statuses.count(s) for s in set(statuses)}}

    async def search(
        self, dataset, query=None, filter=None, sort=None, offset: int = 0, limit: int = 100, user_id=None
    ) -> SearchResponses:
        # `user_id` is not in the abstract signature, but the annotator queue (/me/...) passes it.
        scored = []
        for row in await _rows(dataset.id):
            if _matches(row, filter) and (score := _text_score(row, query)) is not None:
                scored.append((score, row))
        ordered = _order(scored, sort, user_id)
        items = [SearchResponseItem(record_id=row.id, score=score) for score, row in ordered[offset : offset + limit]]
        return SearchResponses(items=items, total=len(ordered))

    async def similarity_search(
        self,
        dataset,
        vector_settings,
        value=None,
        record=None,
        query=None,
        filter=None,
        max_results: int = 100,
        order=SimilarityOrder.most_similar,
        threshold=None,
    ) -> SearchResponses:
        async with AsyncSessionLocal() as db:
            vectors = dict(
                (
                    await db.execute(
                        select(Vector.record_id, Vector.value).where(Vector.vector_settings_id == vector_settings.id)
                    )
                ).all()
            )
        target = value if value else vectors.get(record.id if record else None)
        if not target:
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        norm = math.sqrt(sum(x * x for x in target)) or 1.0
        scored = []
        for row in await _rows(dataset.id):
            vec = vectors.get(row.id)
            if vec is None or (record is not None and row.id == record.id):
                continue
            if not _matches(row, filter) or _text_score(row, query) is None:
                continue
            cos = sum(a * b for a, b in zip(target, vec)) / (norm * (math.sqrt(sum(x * x for x in vec)) or 1.0))
            score = (1 + cos) / 2  # as ES scores cosine similarity
            if threshold is None or score >= threshold:
                scored.append((score, row))
        scored.sort(key=lambda sr: sr[0], reverse=order != SimilarityOrder.least_similar)
        items = [SearchResponseItem(record_id=row.id, score=score) for score, row in scored[:max_results]]
        return SearchResponses(items=items, total=len(items))

    async def compute_metrics_for(self, metadata_property):
        name = metadata_property.name
        values = [
            row.metadata[name]
            for row in await _rows(metadata_property.dataset_id)
            if row.metadata.get(name) is not None
        ]
        if metadata_property.type == MetadataPropertyType.terms:
            counts: dict[str, int] = {}
            for v in values:
                for term in _as_list(v):
                    counts[str(term)] = counts.get(str(term), 0) + 1
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return TermsMetrics(total=len(counts), values=[TermsMetrics.TermCount(term=t, count=c) for t, c in ranked])
        cls = IntegerMetadataMetrics if metadata_property.type == MetadataPropertyType.integer else FloatMetadataMetrics
        return cls(min=min(values), max=max(values)) if values else cls()
