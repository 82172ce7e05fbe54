import os

from edge.unique import unique_hex


def test_ids_are_32_hex_digits_and_never_repeat():
    ids = [unique_hex() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_child_does_not_continue_the_parents_sequence():
    read, write = os.pipe()
    before = unique_hex()
    pid = os.fork()
    if pid == 0:  # child: report one id and leave without running pytest's teardown
        os.write(write, unique_hex().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert child[:16] != before[:16], "the child kept the parent's random prefix"
    assert child != unique_hex()
