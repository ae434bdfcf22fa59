// The backend-independent Communicator checks (see communicator_checks.h).
#include "communicator_checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"

namespace stagekit::dist::testing {
namespace {

using Bytes = std::vector<std::byte>;

std::string where(const Communicator& comm, const std::string& what) {
  return fmt::format("{} (rank {} of {})", what, comm.rank(), comm.size());
}

// The value of element i on rank r in the all_reduce checks, as the dtype holds it (float8_e5m2
// rounds 9 to 8, for example).
double reduce_input(DType dtype, std::size_t i, int r) {
  const double v =
      dtype == DType::bool_ ? ((i + static_cast<std::size_t>(r)) % 3 == 0 ? 1.0 : 0.0) : static_cast<double>(i % 7) + r;
  std::vector<std::byte> bytes(element_size(dtype));
  encode_element(dtype, v, bytes);
  return decode_element(dtype, bytes);
}

Bytes encode_all(DType dtype, const std::vector<double>& values) {
  const std::size_t es = element_size(dtype);
  Bytes out(values.size() * es);
  for (std::size_t i = 0; i < values.size(); ++i) encode_element(dtype, values[i], std::span(out).subspan(i * es, es));
  return out;
}

}  // namespace

std::vector<std::byte> pattern(int rank, std::size_t n) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::byte>((i * 31 + static_cast<std::size_t>(rank) * 97 + 7) & 0xFF);
  return out;
}

std::string missing_parts(const std::string& text, const std::vector<std::string>& parts) {
  std::string missing;
  for (const auto& p : parts) {
    if (text.find(p) == std::string::npos) missing += (missing.empty() ? "'" : ", '") + p + "'";
  }
  return missing;
}

void check_identity(Communicator& comm, const std::string& backend) {
  EXPECT_EQ(comm.backend(), backend);
  EXPECT_GE(comm.rank(), 0);
  EXPECT_LT(comm.rank(), comm.size());
}

void check_point_to_point(Communicator& comm) {
  const int r = comm.rank();
  const int n = comm.size();
  Bytes one(1);
  expect_error<InvalidArgument>([&] { comm.send(one, r, 0); }, {"itself"}, where(comm, "send to self"));
  expect_error<InvalidArgument>([&] { comm.recv(one, r, 0); }, {"itself"}, where(comm, "recv from self"));
  expect_error<InvalidArgument>([&] { comm.send(one, n, 0); }, {"out of range"}, where(comm, "send out of range"));
  expect_error<InvalidArgument>([&] { (void)comm.recv_any_size(-1, 0); }, {"out of range"},
                                where(comm, "recv out of range"));
  if (n < 2) return;
  expect_error<InvalidArgument>([&] { comm.send(one, (r + 1) % n, -3); }, {"tag -3"}, where(comm, "negative tag"));

  // A ring, two tags interleaved; received tag by tag: each tag keeps its own order.
  const int next = (r + 1) % n;
  const int prev = (r + n - 1) % n;
  comm.send(pattern(r, 1), next, 1);
  comm.send(pattern(r + 10, 3), next, 2);
  comm.send({}, next, 1);
  comm.send(pattern(r + 20, 1000), next, 2);
  comm.send(pattern(r + 30, 3), next, 1);
  Bytes three(3);
  comm.recv(three, prev, 2);
  EXPECT_EQ(three, pattern(prev + 10, 3)) << where(comm, "tag 2, first");
  EXPECT_EQ(comm.recv_any_size(prev, 2), pattern(prev + 20, 1000)) << where(comm, "tag 2, second");
  comm.recv(one, prev, 1);
  EXPECT_EQ(one, pattern(prev, 1)) << where(comm, "tag 1, first");
  EXPECT_TRUE(comm.recv_any_size(prev, 1).empty()) << where(comm, "tag 1, empty message");
  comm.recv(three, prev, 1);
  EXPECT_EQ(three, pattern(prev + 30, 3)) << where(comm, "tag 1, third");

  // A large message from rank 0 to the last rank and back.
  const int last = n - 1;
  const std::size_t big = (std::size_t{3} << 20) + 5;
  if (r == 0) {
    comm.send(pattern(1, big), last, 9);
    EXPECT_EQ(comm.recv_any_size(last, 9), pattern(2, big)) << where(comm, "large message back");
  } else if (r == last) {
    Bytes in(big);
    comm.recv(in, 0, 9);
    EXPECT_EQ(in, pattern(1, big)) << where(comm, "large message");
    comm.send(pattern(2, big), 0, 9);
  }

  // A recv whose size differs consumes the message and reports both sizes.
  if (r == 0) {
    comm.send(pattern(5, 8), 1, 5);
    comm.send(pattern(6, 4), 1, 5);
  } else if (r == 1) {
    Bytes four(4);
    expect_error<CommunicationError>([&] { comm.recv(four, 0, 5); }, {"expected 4 bytes", "has 8 bytes"},
                                     where(comm, "recv size mismatch"));
    comm.recv(four, 0, 5);
    EXPECT_EQ(four, pattern(6, 4)) << where(comm, "message after a size mismatch");
  }
}

void check_broadcast(Communicator& comm) {
  for (int root = 0; root < comm.size(); ++root) {
    Bytes data = comm.rank() == root ? pattern(root, 37) : Bytes(37, std::byte{0xEE});
    comm.broadcast(data, root);
    EXPECT_EQ(data, pattern(root, 37)) << where(comm, fmt::format("broadcast from root {}", root));
  }
  Bytes empty;
  comm.broadcast(empty, 0);
  expect_error<InvalidArgument>([&] { comm.broadcast(empty, comm.size()); }, {"root"}, where(comm, "bad root"));
}

void check_all_gather(Communicator& comm) {
  const int n = comm.size();
  Bytes out(8 * static_cast<std::size_t>(n));
  comm.all_gather(pattern(comm.rank(), 8), out);
  for (int r = 0; r < n; ++r) {
    EXPECT_TRUE(std::equal(out.begin() + 8 * r, out.begin() + 8 * (r + 1), pattern(r, 8).begin()))
        << where(comm, fmt::format("all_gather block of rank {}", r));
  }
  Bytes none;
  comm.all_gather({}, none);
  Bytes wrong(3);
  expect_error<InvalidArgument>([&] { comm.all_gather(pattern(0, 8), wrong); }, {"all_gather", "3 bytes"},
                                where(comm, "all_gather output size"));
}

void check_all_gather_v(Communicator& comm) {
  const int n = comm.size();
  const auto size_of = [](int r) { return static_cast<std::size_t>(r) * 3; };  // rank 0: empty
  auto all = comm.all_gather_v(pattern(comm.rank(), size_of(comm.rank())));
  ASSERT_EQ(all.size(), static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(all[static_cast<std::size_t>(r)], pattern(r, size_of(r))) << where(comm, "all_gather_v");
  all = comm.all_gather_v({});
  EXPECT_EQ(all, std::vector<Bytes>(static_cast<std::size_t>(n))) << where(comm, "all_gather_v of nothing");
  const bool last = comm.rank() == n - 1;  // only one rank contributes
  all = comm.all_gather_v(last ? pattern(9, 11) : Bytes{});
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(all[static_cast<std::size_t>(r)], r == n - 1 ? pattern(9, 11) : Bytes{})
        << where(comm, "one contributor");
  }
}

void check_all_gather_into(Communicator& comm) {
  const int n = comm.size();
  const auto size_of = [](int r) { return static_cast<std::size_t>(r) * 5 + 1; };
  std::vector<std::size_t> sizes;
  std::size_t total = 0;
  for (int r = 0; r < n; ++r) {
    sizes.push_back(size_of(r));
    total += size_of(r);
  }
  const auto check_blocks = [&](const Bytes& out, const std::string& what) {
    std::size_t at = 0;
    for (int r = 0; r < n; ++r) {
      EXPECT_TRUE(std::equal(out.begin() + static_cast<std::ptrdiff_t>(at),
                             out.begin() + static_cast<std::ptrdiff_t>(at + size_of(r)),
                             pattern(r, size_of(r)).begin()))
          << where(comm, fmt::format("{}: block of rank {}", what, r));
      at += size_of(r);
    }
  };
  // In place: the owner holds both buffers.
  auto owned = std::make_shared<std::pair<Bytes, Bytes>>(pattern(comm.rank(), size_of(comm.rank())), Bytes(total));
  comm.all_gather_into(owned->first, owned->second, sizes, owned);
  check_blocks(owned->second, "all_gather_into with an owner");
  // Through the backend's own buffers.
  Bytes out(total);
  comm.all_gather_into(pattern(comm.rank(), size_of(comm.rank())), out, sizes, nullptr);
  check_blocks(out, "all_gather_into without an owner");
  // Equal sizes.
  std::vector<std::size_t> equal(static_cast<std::size_t>(n), 4);
  Bytes four(4 * static_cast<std::size_t>(n));
  comm.all_gather_into(pattern(comm.rank(), 4), four, equal, nullptr);
  for (int r = 0; r < n; ++r) {
    EXPECT_TRUE(std::equal(four.begin() + 4 * r, four.begin() + 4 * (r + 1), pattern(r, 4).begin()))
        << where(comm, "all_gather_into of equal sizes");
  }
  // Coalesced: three at once (one of them empty), in place.
  {
    auto buffers = std::make_shared<std::vector<Bytes>>();
    const std::vector<std::size_t> none(static_cast<std::size_t>(n), 0);
    buffers->push_back(pattern(comm.rank(), size_of(comm.rank())));
    buffers->push_back(Bytes(total));
    buffers->push_back(pattern(comm.rank() + 50, 4));
    buffers->push_back(Bytes(4 * static_cast<std::size_t>(n)));
    const std::vector<Communicator::GatherInto> items{
        {(*buffers)[0], (*buffers)[1], sizes}, {{}, {}, none}, {(*buffers)[2], (*buffers)[3], equal}};
    comm.all_gather_into_many(items, buffers);
    check_blocks((*buffers)[1], "all_gather_into_many, first item");
    for (int r = 0; r < n; ++r) {
      EXPECT_TRUE(
          std::equal((*buffers)[3].begin() + 4 * r, (*buffers)[3].begin() + 4 * (r + 1), pattern(r + 50, 4).begin()))
          << where(comm, "all_gather_into_many, third item");
    }
  }
  // Coalesced, several items of one block size next to items of others: the equal ones travel
  // together (one collective over their scattered blocks, on MPI), every block where it belongs.
  {
    auto buffers = std::make_shared<std::vector<Bytes>>();
    const std::vector<std::size_t> block_sizes{100, 100, 7, 100, 7};
    for (std::size_t i = 0; i < block_sizes.size(); ++i) {
      buffers->push_back(pattern(comm.rank() + 10 * static_cast<int>(i), block_sizes[i]));
      buffers->push_back(Bytes(block_sizes[i] * static_cast<std::size_t>(n)));
    }
    std::vector<Communicator::GatherInto> items;
    for (std::size_t i = 0; i < block_sizes.size(); ++i) {
      items.push_back({(*buffers)[2 * i], (*buffers)[2 * i + 1],
                       std::vector<std::size_t>(static_cast<std::size_t>(n), block_sizes[i])});
    }
    comm.all_gather_into_many(items, buffers);
    for (std::size_t i = 0; i < block_sizes.size(); ++i) {
      const Bytes& gathered = (*buffers)[2 * i + 1];
      const auto b = static_cast<std::ptrdiff_t>(block_sizes[i]);
      for (int r = 0; r < n; ++r) {
        const Bytes expected = pattern(r + 10 * static_cast<int>(i), block_sizes[i]);
        EXPECT_TRUE(std::equal(gathered.begin() + b * r, gathered.begin() + b * (r + 1), expected.begin()))
            << where(comm, fmt::format("all_gather_into_many of equal blocks: item {}, block of rank {}", i, r));
      }
    }
  }
  Bytes wrong(total + 1);
  expect_error<InvalidArgument>(
      [&] { comm.all_gather_into(pattern(comm.rank(), size_of(comm.rank())), wrong, sizes, nullptr); },
      {"all_gather_into", "add up to"}, where(comm, "all_gather_into output size"));
}

namespace {

// The pairs of check_send_recv: (0, 1), (2, 3), ...; the last rank of an odd world has none (-1).
int pair_partner(const Communicator& comm) {
  const int partner = comm.rank() ^ 1;
  return partner < comm.size() ? partner : -1;
}

// What rank r sends its partner in check_send_recv: three messages, one of them empty.
std::vector<Bytes> send_recv_messages(int r) {
  return {pattern(r, 13 + static_cast<std::size_t>(r)), Bytes{}, pattern(r + 40, 5000 + static_cast<std::size_t>(r))};
}

}  // namespace

void check_send_recv(Communicator& comm) {
  // Every rank, the one without a partner in an odd world too: a peer outside the world or itself.
  expect_error<InvalidArgument>([&] { comm.send_recv(comm.size(), {}, {}, 21, nullptr); }, {"send_recv", "rank"},
                                where(comm, "send_recv to a rank outside the world"));
  expect_error<InvalidArgument>([&] { comm.send_recv(comm.rank(), {}, {}, 21, nullptr); }, {"send_recv", "itself"},
                                where(comm, "send_recv with itself"));
  const int partner = pair_partner(comm);
  if (partner < 0) return;
  const std::vector<Bytes> mine = send_recv_messages(comm.rank());
  const std::vector<Bytes> expected = send_recv_messages(partner);
  for (const bool with_owner : {true, false}) {
    auto memory = std::make_shared<std::pair<std::vector<Bytes>, std::vector<Bytes>>>(mine, std::vector<Bytes>{});
    for (const Bytes& e : expected) memory->second.emplace_back(e.size());
    std::vector<std::span<const std::byte>> sends(memory->first.begin(), memory->first.end());
    std::vector<std::span<std::byte>> recvs(memory->second.begin(), memory->second.end());
    comm.send_recv(partner, sends, recvs, 21, with_owner ? memory : nullptr);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(memory->second[i], expected[i])
          << where(comm, fmt::format("send_recv {} an owner: message #{} from rank {}", with_owner ? "with" : "without",
                                     i, partner));
    }
  }
  // Nothing either way, and only one way.
  comm.send_recv(partner, {}, {}, 21, nullptr);
  Bytes one(4);
  const Bytes four = pattern(0, 4);
  if (comm.rank() < partner) {
    comm.send_recv(partner, std::vector<std::span<const std::byte>>{four}, {}, 22, nullptr);
  } else {
    comm.send_recv(partner, {}, std::vector<std::span<std::byte>>{one}, 22, nullptr);
    EXPECT_EQ(one, four) << where(comm, "send_recv one way");
  }
}

void check_broadcast_many(Communicator& comm) {
  const int root = comm.size() - 1;
  const std::vector<std::size_t> sizes{0, 7, 70000};
  for (const bool with_owner : {true, false}) {
    auto items = std::make_shared<std::vector<Bytes>>();
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      items->push_back(comm.rank() == root ? pattern(static_cast<int>(i), sizes[i]) : Bytes(sizes[i]));
    }
    const std::vector<std::span<std::byte>> spans(items->begin(), items->end());
    comm.broadcast_many(spans, root, with_owner ? items : nullptr);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      EXPECT_EQ((*items)[i], pattern(static_cast<int>(i), sizes[i]))
          << where(comm, fmt::format("broadcast_many {} an owner: item #{}", with_owner ? "with" : "without", i));
    }
  }
  comm.broadcast_many({}, root, nullptr);
  expect_error<InvalidArgument>([&] { comm.broadcast_many({}, comm.size(), nullptr); }, {"broadcast_many", "root"},
                                where(comm, "broadcast_many from a rank outside the world"));
}

void check_broadcast_many_mismatch(Communicator& comm) {
  if (comm.size() == 1) {  // nobody to disagree with: the sizes are the root's own
    std::vector<Bytes> items{pattern(0, 3), pattern(1, 9)};
    const std::vector<std::span<std::byte>> spans(items.begin(), items.end());
    comm.broadcast_many(spans, 0, nullptr);
    EXPECT_EQ(items[1], pattern(1, 9)) << where(comm, "broadcast_many on one rank");
    return;
  }
  // One more byte in the last item on rank 0: every rank fails before any payload moves.
  std::vector<Bytes> items{Bytes(3), Bytes(comm.rank() == 0 ? 9 : 8)};
  const std::vector<std::span<std::byte>> spans(items.begin(), items.end());
  expect_error<CommunicationError>([&] { comm.broadcast_many(spans, 0, nullptr); }, {"broadcast"},
                                   where(comm, "broadcast_many of sizes that differ"));
}

namespace {

// Each rank of a pair sends `sent` bytes where its partner's receive expects 8.
void expect_wrong_size(Communicator& comm, std::size_t sent, int tag, const std::vector<std::string>& parts,
                       const std::string& what) {
  const int partner = pair_partner(comm);
  if (partner < 0) return;
  const Bytes message = pattern(comm.rank(), sent);
  Bytes eight(8);
  std::vector<std::string> expected{"send_recv with rank", fmt::format("{}", partner)};
  expected.insert(expected.end(), parts.begin(), parts.end());
  expect_error<CommunicationError>(
      [&] {
        comm.send_recv(partner, std::vector<std::span<const std::byte>>{message},
                       std::vector<std::span<std::byte>>{eight}, tag, nullptr);
      },
      expected, where(comm, what));
}

}  // namespace

void check_send_recv_size_mismatch(Communicator& comm) {
  expect_wrong_size(comm, 10, 23, {}, "send_recv of a longer message");
}

void check_send_recv_short_message(Communicator& comm) {
  expect_wrong_size(comm, 6, 24, {"has 6 bytes, 8 were expected"}, "send_recv of a shorter message");
}

void check_all_reduce(Communicator& comm) {
  const int n = comm.size();
  constexpr std::size_t kCount = 11;
  for (DType dtype : kAllDTypes) {
    std::vector<double> mine(kCount);
    std::vector<double> expected(kCount, 0.0);
    for (std::size_t i = 0; i < kCount; ++i) {
      mine[i] = reduce_input(dtype, i, comm.rank());
      for (int r = 0; r < n; ++r) {
        const double v = reduce_input(dtype, i, r);
        expected[i] = dtype == DType::bool_ ? std::max(expected[i], v) : expected[i] + v;
      }
    }
    Bytes data = encode_all(dtype, mine);
    comm.all_reduce(data, dtype, ReduceOp::sum);
    EXPECT_EQ(data, encode_all(dtype, expected)) << where(comm, fmt::format("all_reduce of {}", dtype_name(dtype)));
  }
  Bytes wraps(3, std::byte{200});  // uint8 wraps like C
  comm.all_reduce(wraps, DType::uint8, ReduceOp::sum);
  EXPECT_EQ(wraps, Bytes(3, static_cast<std::byte>((200 * n) & 0xFF))) << where(comm, "uint8 wraps");
  Bytes empty;
  comm.all_reduce(empty, DType::float32, ReduceOp::sum);
  Bytes odd(6);
  expect_error<InvalidArgument>([&] { comm.all_reduce(odd, DType::float32, ReduceOp::sum); }, {"float32", "6 bytes"},
                                where(comm, "all_reduce of a partial element"));
}

void check_barrier(Communicator& comm) {
  for (int i = 0; i < 3; ++i) comm.barrier();
}

void check_split(Communicator& comm) {
  const int r = comm.rank();
  const int n = comm.size();
  // Colour by parity, keys reversing the order.
  auto sub = comm.split(r % 2, -r);
  ASSERT_NE(sub, nullptr);
  std::vector<std::int32_t> expected;
  for (int p = n - 1; p >= 0; --p) {
    if (p % 2 == r % 2) expected.push_back(p);
  }
  EXPECT_EQ(sub->backend(), comm.backend());
  EXPECT_EQ(sub->timeout(), comm.timeout());
  EXPECT_EQ(sub->size(), static_cast<int>(expected.size()));
  EXPECT_EQ(sub->rank(), static_cast<int>(std::find(expected.begin(), expected.end(), r) - expected.begin()));
  std::vector<std::int32_t> members(static_cast<std::size_t>(sub->size()));
  const std::int32_t me = r;
  sub->all_gather(std::as_bytes(std::span(&me, 1)), std::as_writable_bytes(std::span(members)));
  EXPECT_EQ(members, expected) << where(comm, "members of the parity split");

  // Equal keys keep the parent order; kUndefinedColor gets no communicator.
  auto without_first = comm.split(r == 0 ? kUndefinedColor : 7, 0);
  if (r == 0) {
    EXPECT_EQ(without_first, nullptr);
  } else {
    ASSERT_NE(without_first, nullptr);
    EXPECT_EQ(without_first->size(), n - 1);
    EXPECT_EQ(without_first->rank(), r - 1);
    auto nested = without_first->split(0, 0);
    ASSERT_NE(nested, nullptr);
    EXPECT_EQ(nested->size(), n - 1);
    nested->barrier();
    without_first->barrier();
  }
  sub->barrier();
  comm.barrier();
  expect_error<InvalidArgument>([&] { (void)comm.split(-5, 0); }, {"colour -5"}, where(comm, "negative colour"));
}

void check_tensor_helpers(Communicator& comm) {
  const int r = comm.rank();
  const int n = comm.size();
  Tensor sum = Tensor::full({2, 3}, r + 1, DType::float32);
  comm.all_reduce_tensor(sum);
  const int ranks_sum = n * (n + 1) / 2;  // 1 + 2 + ... + n, exactly
  EXPECT_TRUE(Tensor::equal(sum, Tensor::full({2, 3}, ranks_sum, DType::float32))) << where(comm, "all_reduce_tensor");

  const Tensor source = Tensor::arange(6, DType::int16).view({2, 3});
  Tensor copy = r == 0 ? source.clone() : Tensor::zeros({2, 3}, DType::int16);
  comm.broadcast_tensor(copy, 0);
  EXPECT_TRUE(Tensor::equal(copy, source)) << where(comm, "broadcast_tensor");

  const Tensor gathered = comm.all_gather_tensor(Tensor::full({2, 3}, r, DType::int64));
  EXPECT_EQ(std::vector<std::int64_t>(gathered.sizes().begin(), gathered.sizes().end()),
            (std::vector<std::int64_t>{2 * n, 3}));
  for (int p = 0; p < n; ++p) {
    EXPECT_EQ(gathered.item({2 * p + 1, 2}), p) << where(comm, "all_gather_tensor");
  }

  expect_error<InvalidArgument>([&] { comm.all_reduce_tensor(Tensor()); }, {"undefined"},
                                where(comm, "undefined tensor"));
  expect_error<InvalidArgument>(
      [&] {
        comm.broadcast_tensor(Tensor::zeros({3, 4}, DType::float32).transpose(0, 1), 0);
      },
      {"contiguous"}, where(comm, "non-contiguous tensor"));
  expect_error<InvalidArgument>([&] { (void)comm.all_gather_tensor(Tensor::scalar(1, DType::float32)); }, {"0-dim"},
                                where(comm, "0-dim all_gather_tensor"));
  if (n < 2) return;

  // Shapes that differ between ranks.
  Tensor uneven = Tensor::zeros({r == 0 ? 4 : 5}, DType::float32);
  expect_error<InvalidArgument>([&] { comm.broadcast_tensor(uneven, 0); }, {"sizes differ", "float32[4]", "float32[5]"},
                                where(comm, "broadcast_tensor with other sizes"));
  Tensor other_dtype = Tensor::zeros({4}, r == 0 ? DType::float32 : DType::float64);
  expect_error<InvalidArgument>([&] { comm.all_reduce_tensor(other_dtype); }, {"float32[4]", "float64[4]"},
                                where(comm, "all_reduce_tensor with other dtypes"));

  // Point to point, matching, then a dtype and a size that differ (the data is consumed).
  if (r == 0) {
    comm.send_tensor(Tensor::arange(5, DType::float64), 1, 4);
    comm.send_tensor(Tensor::arange(4, DType::float32), 1, 4);
    comm.send_tensor(Tensor::arange(4, DType::float32), 1, 4);
    comm.send_tensor(Tensor::arange(3, DType::float32), 1, 4);
  } else if (r == 1) {
    Tensor in = Tensor::empty({5}, DType::float64);
    comm.recv_tensor(in, 0, 4);
    EXPECT_TRUE(Tensor::equal(in, Tensor::arange(5, DType::float64))) << where(comm, "recv_tensor");
    Tensor wrong_dtype = Tensor::empty({4}, DType::float64);
    expect_error<InvalidArgument>([&] { comm.recv_tensor(wrong_dtype, 0, 4); },
                                  {"dtype differs", "float32[4]", "float64[4]"}, where(comm, "recv_tensor dtype"));
    Tensor wrong_size = Tensor::empty({5}, DType::float32);
    expect_error<InvalidArgument>([&] { comm.recv_tensor(wrong_size, 0, 4); }, {"sizes differ"},
                                  where(comm, "recv_tensor sizes"));
    Tensor three = Tensor::empty({3}, DType::float32);
    comm.recv_tensor(three, 0, 4);
    EXPECT_TRUE(Tensor::equal(three, Tensor::arange(3, DType::float32))) << where(comm, "recv_tensor after mismatches");
  }
}

void check_mismatches(Communicator& comm) {
  const int r = comm.rank();
  if (comm.size() < 2) return;
  Bytes data(r == 0 ? 8 : 4);
  expect_error<CommunicationError>([&] { comm.broadcast(data, 0); }, {"broadcast", "size", "8 bytes", "4 bytes"},
                                   where(comm, "broadcast sizes"));
  Bytes out(data.size() * static_cast<std::size_t>(comm.size()));
  expect_error<CommunicationError>([&] { comm.all_gather(data, out); }, {"all_gather", "size"},
                                   where(comm, "all_gather sizes"));
  // all_gather_into: a rank contributing other than what every rank expects of it.
  const std::vector<std::size_t> sizes(static_cast<std::size_t>(comm.size()), 4);
  Bytes gathered(4 * static_cast<std::size_t>(comm.size()));
  Bytes mine(r == 0 ? 3 : 4);
  expect_error<CommunicationError>([&] { comm.all_gather_into(mine, gathered, sizes, nullptr); }, {"size"},
                                   where(comm, "all_gather_into contributions"));
  // The same inside a coalesced call whose totals still add up: rank 0 swaps two items' blocks.
  std::vector<std::size_t> sizes_a(static_cast<std::size_t>(comm.size()), 4);
  std::vector<std::size_t> sizes_b = sizes_a;
  sizes_a[0] = 3;
  sizes_b[0] = 5;
  const Bytes first = pattern(r, r == 0 ? 5 : 4);
  const Bytes second = pattern(r, r == 0 ? 3 : 4);
  Bytes out_a(3 + 4 * static_cast<std::size_t>(comm.size() - 1));
  Bytes out_b(5 + 4 * static_cast<std::size_t>(comm.size() - 1));
  const std::vector<Communicator::GatherInto> swapped{{first, out_a, sizes_a}, {second, out_b, sizes_b}};
  expect_error<CommunicationError>([&] { comm.all_gather_into_many(swapped, nullptr); }, {"size"},
                                   where(comm, "all_gather_into_many contributions"));
  Bytes values(8);
  expect_error<CommunicationError>(
      [&] { comm.all_reduce(values, r == 0 ? DType::int32 : DType::float32, ReduceOp::sum); },
      {"all_reduce", "dtype", "int32", "float32"}, where(comm, "all_reduce dtypes"));
  expect_error<CommunicationError>(
      [&] {
        if (r == 0) {
          comm.barrier();
        } else {
          (void)comm.all_gather_v({});
        }
      },
      {"different collectives", "barrier", "all_gather_v"}, where(comm, "different collectives"));
  // Still usable.
  comm.barrier();
  Bytes one = pattern(0, 1);
  comm.broadcast(one, comm.size() - 1);
  EXPECT_EQ(one, pattern(0, 1));
}

}  // namespace stagekit::dist::testing
