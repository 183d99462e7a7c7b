"""The vectors a topic fit keeps for the next: taken when they are the pinned model's, ignored otherwise."""
import numpy as np

from models.topics import EMBEDDING_MODEL, TopicModel, embed
from pipeline.store import Store
from pipeline.topic_vectors import Cache

TEXTS = ["my internet keeps dropping every evening", "the bill is higher than last month",
         "my internet keeps dropping every evening", "the app crashes when I open it"]


def half(vectors: np.ndarray) -> np.ndarray:
    """Vectors as a fit gets them: kept at half precision, computed with in float32 (topic_vectors.STORED)."""
    return vectors.astype(np.float16).astype(np.float32)


def fit_vectors(store: Store, run_id: str, texts: list[str]) -> tuple[Cache, np.ndarray]:
    cache = Cache(store, run_id)
    vectors = cache.vectors(texts)
    store.commit(run_id, 0, {}, meta={"topic_vectors": cache.saved})
    return cache, vectors


def test_a_fit_takes_the_last_fits_vectors_and_embeds_only_new_texts(tmp_path):
    store = Store(tmp_path / "out")
    with store.lock():
        first, vectors = fit_vectors(store, "r1", TEXTS)
        assert (first.embedded, first.reused) == (3, 0)  # three distinct texts
        assert np.array_equal(vectors, half(embed(TEXTS))) and np.array_equal(vectors[0], vectors[2])
        second, again = fit_vectors(store, "r2", TEXTS[1:] + ["where is my parcel, it was due on monday"])
        assert (second.embedded, second.reused) == (1, 3)
        assert np.array_equal(again[:3], vectors[1:])
        with np.load(store.out / "models" / second.saved) as saved:  # the new file: this fit's texts only
            assert len(saved["keys"]) == 4 and str(saved["model"]) == EMBEDDING_MODEL


def test_a_fit_reads_its_texts_vectors_without_a_row_per_text_and_fits_as_from_an_array(tmp_path):
    texts = TEXTS * 3 + ["where is my parcel, it was due on monday", "my parcel has not arrived yet"]
    store = Store(tmp_path / "out")
    with store.lock():
        _, rows = fit_vectors(store, "r1", texts)
    full = half(embed(texts))
    assert rows.distinct.shape == (5, full.shape[1]) and len(rows) == len(texts) == 14  # each distinct text once
    assert np.array_equal(rows[3:9], full[3:9]) and np.array_equal(rows[np.array([13, 0, 5])], full[[13, 0, 5]])
    assert rows[2:4].dtype == np.float32
    params = {"min_topic_size": 2, "max_fit": 8}  # a sample of the turns, read by index
    from_rows = TopicModel(**params).fit(texts, vectors=rows)
    from_array = TopicModel(**params).fit(texts, vectors=full)
    assert from_rows.n_topics_ >= 1
    assert np.array_equal(from_rows.labels_, from_array.labels_)
    assert np.array_equal(from_rows.centroids_, from_array.centroids_)
    assert np.array_equal(from_rows.assign(texts, vectors=rows)[0], from_array.labels_)


def test_vectors_of_another_model_or_a_damaged_file_are_not_used(tmp_path):
    store = Store(tmp_path / "out")
    with store.lock():
        first, _ = fit_vectors(store, "r1", TEXTS)
        path = store.out / "models" / first.saved
        with np.load(path) as saved:
            keys, vectors = saved["keys"], saved["vectors"]
        with open(path, "wb") as file:
            np.savez(file, keys=keys, vectors=vectors, model=np.array("another-model"))
        other, _ = fit_vectors(store, "r2", TEXTS)
        assert (other.embedded, other.reused) == (3, 0)

        with open(store.out / "models" / other.saved, "wb") as file:  # the model's name, vectors cut short
            np.savez(file, keys=keys, vectors=vectors[:, :10], model=np.array(EMBEDDING_MODEL))
        cut, _ = fit_vectors(store, "r3", TEXTS)
        assert (cut.embedded, cut.reused) == (3, 0)

        (store.out / "models" / cut.saved).write_bytes(b"not a numpy file")
        damaged, vectors = fit_vectors(store, "r4", TEXTS)
        assert (damaged.embedded, damaged.reused) == (3, 0)
        assert np.array_equal(vectors, half(embed(TEXTS)))


def test_a_nights_vectors_are_kept_until_no_window_holds_their_day(tmp_path):
    """save_assigned keeps a night's vectors for the next fit, and drops those of nights whose newest day the
    next fit's window no longer reaches; a fit takes them, and this run's own from memory."""
    from datetime import date

    from pipeline.topic_vectors import keyed, save_assigned

    store = Store(tmp_path / "out")
    with store.lock():
        old = save_assigned(store, "r1", [keyed(TEXTS[:2], embed(TEXTS[:2]))], date(2026, 10, 1), date(2026, 9, 4))
        store.commit("r1", 0, {}, meta={"topic_vectors_assigned": old})
        kept = save_assigned(store, "r2", [keyed(TEXTS[3:], embed(TEXTS[3:])), keyed([], np.zeros((0, 384)))],
                             date(2026, 11, 2), date(2026, 10, 2))  # a window from 2 Oct: the 1 Oct night is out
        assert kept == [{"file": "topics-r2.assigned.npz", "newest": "2026-11-02"}]
        store.commit("r2", 0, {}, meta={"topic_vectors_assigned": kept})
        store.drop_stale_models()
        assert [p.name for p in (store.out / "models").iterdir()] == ["topics-r2.assigned.npz"]
        parcel = "where is my parcel, it was due on monday"
        cache = Cache(store, "r3", [keyed([parcel], embed([parcel]))])
        vectors = cache.vectors(TEXTS[2:] + [parcel])
        assert (cache.embedded, cache.reused) == (1, 2)  # the first text was only in the dropped night's file
        assert np.array_equal(vectors, half(embed(TEXTS[2:] + [parcel])))


def test_a_nights_file_not_committed_is_removed_by_the_next_writer(tmp_path):
    """Killed between saving a night's vectors and the commit that lists them: the next run drops the file."""
    from datetime import date

    from pipeline.topic_vectors import keyed, save_assigned

    store = Store(tmp_path / "out")
    with store.lock():
        kept = save_assigned(store, "r1", [keyed(TEXTS, embed(TEXTS))], date(2026, 11, 2), date(2026, 10, 6))
        assert (store.out / "models" / kept[0]["file"]).exists()
    with store.lock():  # the next writer, before it does anything
        assert not any((store.out / "models").iterdir()) and not store.meta().get("topic_vectors_assigned")
