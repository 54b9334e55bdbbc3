import copy

from rest_framework import serializers

# Fields that hold no other field (no `child`, no nested serializer): a shallow copy of one is a field of its own.
FLAT_FIELDS = (serializers.CharField, serializers.IntegerField, serializers.BooleanField, serializers.DateTimeField)


# DRF's Serializer, copying its flat fields for each instance instead of deep-copying them.
#
# DRF deep-copies every declared field for every serializer it makes, and a field's deep copy
# is the field built again from its arguments (validators, messages): for the sign-in's body,
# its fields took 55 of the 180 us its validation took in a loop, and 30 copied shallowly
# (docs/benchmarks.md). A flat field's shallow copy shares only what no
# request changes (its validators and messages); bind() then gives the copy its own name and
# parent. Any other field is deep-copied, as DRF does.
#
# (A comment, not a docstring: the schema would describe every request body with it.)
class FlatSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            name: copy.copy(field) if isinstance(field, FLAT_FIELDS) else copy.deepcopy(field)
            for name, field in self._declared_fields.items()
        }
