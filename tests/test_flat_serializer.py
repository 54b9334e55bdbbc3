"""The request bodies' serializers copy their fields shallowly (project.serializers): each instance still
has fields of its own, bound to it, and the declared fields stay as declared."""

import threading

from rest_framework import serializers

from accounts.views import ObtainTokenView
from project.serializers import FlatSerializer


def test_each_instance_has_its_own_fields_bound_to_it():
    declared = ObtainTokenView.InputSerializer._declared_fields["phone"]
    first = ObtainTokenView.InputSerializer(data={"phone": "+79110000001", "code": "1234"})
    second = ObtainTokenView.InputSerializer(data={"phone": "not a phone", "code": "12"})

    assert first.is_valid()
    assert not second.is_valid()

    assert first.fields["phone"] is not second.fields["phone"]
    assert first.fields["phone"].parent is first
    assert second.fields["phone"].parent is second
    assert (declared.parent, declared.field_name) == (None, None)
    assert first.validated_data == {"phone": "+79110000001", "code": "1234"}
    assert set(second.errors) == {"phone", "code"}


def test_a_field_holding_another_is_deep_copied_as_drf_does():
    class Tags(FlatSerializer):
        tags = serializers.ListField(child=serializers.CharField(max_length=3))

    first, second = Tags(data={"tags": ["abc"]}), Tags(data={"tags": ["abcd"]})

    assert first.fields["tags"].child is not second.fields["tags"].child
    assert first.fields["tags"].child.parent is first.fields["tags"]
    assert first.is_valid() and not second.is_valid()
    assert second.errors == {"tags": {0: ["Ensure this field has no more than 3 characters."]}}


def test_instances_made_at_once_in_threads_keep_their_own_errors():
    # GUNICORN_THREADS > 1: requests of one process validate at the same time.
    results, barrier = {}, threading.Barrier(8)

    def validate(index: int) -> None:
        barrier.wait()
        for _ in range(200):
            code = "1234" if index % 2 else "12"
            payload = ObtainTokenView.InputSerializer(data={"phone": "+79110000001", "code": code})
            results.setdefault(index, set()).add((payload.is_valid(), tuple(payload.errors)))

    threads = [threading.Thread(target=validate, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == {index: {(True, ())} if index % 2 else {(False, ("code",))} for index in range(8)}
