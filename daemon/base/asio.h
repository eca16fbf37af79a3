// The one way our code includes Boost.Asio. Boost 1.74's asio/awaitable.hpp uses
// std::exchange without including <utility>, which GCC 12 in C++20 mode rejects.
#pragma once

#include <utility>  // must precede every Asio header

#include <boost/asio.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace ferry {
namespace net = boost::asio;
using UnixSocket = net::local::stream_protocol::socket;
using UnixAcceptor = net::local::stream_protocol::acceptor;
}  // namespace ferry
