"""`build --ray`: the embedding stage on Ray Data workers gives the plain build's index."""

import numpy as np
import pytest

from alliance_qa import store
from alliance_qa.config import Settings
from alliance_qa.evaluation import EVAL_DIR, find_suites, load_questions
from alliance_qa.indexing import build_index
from alliance_qa.search import Searcher
from alliance_qa.store import load_index
from conftest import CORPUS

pytest.importorskip("ray", reason="the cluster extra (alliance-qa[cluster]) is not installed")
ALLIANCE = next(s for s in find_suites(EVAL_DIR) if s.name == "alliance")


@pytest.mark.full
def test_two_local_ray_workers_build_the_plain_builds_index(embedder, built, tmp_path):
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "on-ray",
                        encoders_dir=built.encoders)
    summary = build_index(settings, embedder, ray="local", workers=2)
    assert summary.embedded == summary.chunks * 2 + summary.sentences
    on_ray, plain = load_index(settings.index_dir), load_index(built.index_dir)
    assert list(on_ray.chunks) == list(plain.chunks) and on_ray.keys == plain.keys
    assert np.array_equal(on_ray.token_table, plain.token_table)
    for view in store.VIEWS:      # the same vectors, to float tolerance, quantized alike
        assert np.allclose(store.matrix(on_ray.views[view]), store.matrix(plain.views[view]),
                           atol=1e-3), view
    assert np.allclose(on_ray.tokens.rows(0, len(on_ray.tokens)),
                       plain.tokens.rows(0, len(plain.tokens)), atol=1e-3)
    ray_searcher, plain_searcher = Searcher(on_ray, embedder), Searcher(plain, embedder)
    for question in [q.question for q in load_questions(*ALLIANCE.question_sets)][:60]:
        a, b = ray_searcher.search(question), plain_searcher.search(question)
        assert [h.chunk.id for h in a.hits] == [h.chunk.id for h in b.hits], question
        assert a.abstained == b.abstained, question


@pytest.mark.full
def test_an_address_where_no_cluster_listens_fails_at_once_and_writes_nothing(embedder, built,
                                                                             tmp_path):
    from alliance_qa.errors import ClusterUnavailable, IndexMissing
    settings = Settings(corpus_dir=CORPUS, index_dir=tmp_path / "nowhere",
                        encoders_dir=built.encoders)
    with pytest.raises(ClusterUnavailable, match="No Ray cluster answers at '127.0.0.1:9'"):
        build_index(settings, embedder, ray="127.0.0.1:9")
    with pytest.raises(IndexMissing):
        load_index(settings.index_dir)
