# Runs inside `cmake --install` (included by the install(CODE) in the top CMakeLists.txt), so
# CMAKE_INSTALL_PREFIX is the prefix given now (`--prefix P`), not the one configured: the
# user units are filled in here, with ExecStart= naming <prefix>/bin/ferryd, and installed to
# <prefix>/lib/systemd/user (or FERRY_SYSTEMD_USER_UNIT_DIR: absolute, or relative to the
# prefix). file(INSTALL) honours DESTDIR and records the files in install_manifest.txt.
#
# Set by the caller: FERRY_UNIT_TEMPLATES (systemd/ in the source tree), FERRY_UNIT_WORK_DIR
# (where the filled-in units are written first), FERRY_UNIT_DIR, FERRY_BINDIR, FERRY_DOCDIR
# (absolute, or relative to the prefix).

function(ferry_under_prefix out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

if(FERRY_UNIT_DIR STREQUAL "")
  set(FERRY_UNIT_DIR "lib/systemd/user")
endif()
ferry_under_prefix(_ferry_unit_dir "${FERRY_UNIT_DIR}")
ferry_under_prefix(_ferry_bindir "${FERRY_BINDIR}")
# The names the templates use (systemd/*.in).
set(FERRYD_PATH "${_ferry_bindir}/ferryd")
ferry_under_prefix(FERRY_DOCDIR "${FERRY_DOCDIR}")

set(_ferry_units "")
foreach(_unit ferryd.service ferryd.socket)
  configure_file("${FERRY_UNIT_TEMPLATES}/${_unit}.in" "${FERRY_UNIT_WORK_DIR}/${_unit}" @ONLY)
  list(APPEND _ferry_units "${FERRY_UNIT_WORK_DIR}/${_unit}")
endforeach()
file(INSTALL DESTINATION "${_ferry_unit_dir}" TYPE FILE FILES ${_ferry_units})
