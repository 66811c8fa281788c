-- The Neovim version check. Plain Lua that loads on any Neovim, so an old one gets a clear message
-- instead of a stack trace.
local M = {}

M.minimum = { major = 0, minor = 10 }

function M.current()
  local v = vim.version()
  return v.major, v.minor, v.patch
end

function M.supported()
  local major, minor = M.current()
  return major > M.minimum.major or (major == M.minimum.major and minor >= M.minimum.minor)
end

function M.message()
  local major, minor, patch = M.current()
  return string.format(
    'switchboard.nvim needs Neovim %d.%d or newer; this is Neovim %d.%d.%d. '
      .. 'Update Neovim (https://github.com/neovim/neovim/releases) to use Switchboard.',
    M.minimum.major,
    M.minimum.minor,
    major,
    minor,
    patch
  )
end

-- Says so once per session.
function M.warn()
  if vim.g.switchboard_version_warned then
    return
  end
  vim.g.switchboard_version_warned = true
  vim.api.nvim_echo({ { M.message(), 'ErrorMsg' } }, true, {})
end

return M
