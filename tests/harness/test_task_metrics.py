from edgekit.harness.task_metrics import char_accuracy, char_errors, edit_distance


def test_edit_distance_counts_insertions_deletions_and_substitutions():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("abc", "abc") == 0


def test_character_accuracy_ignores_whitespace_and_pools_the_characters():
    assert char_errors("Hello world", "Helloworld") == (0, 10)
    assert char_errors("Hel1o", "Hello") == (1, 5)
    assert char_accuracy(["Hel1o", "abc"], ["Hello", "abcde"]) == 100.0 * (1 - 3 / 10)
    assert char_accuracy([], []) == 0.0
