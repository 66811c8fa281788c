-- A stored session (secret_store.get returns a refresh token the test obtained from the gateway) is resumed
-- when the server starts: hosted at once, and the rotated token replaces the stored one.
local stored = {}

return {
  skip_setup = true,
  timeout = 90,
  run = function(T)
    local opts = vim.json.decode(vim.env.SWITCHBOARD_TEST_OPTS)
    local given = opts.refresh_token
    opts.refresh_token = nil
    local asked = nil
    opts.secret_store = {
      get = function(url)
        asked = url
        return given
      end,
      set = function(_, token)
        table.insert(stored, token or vim.NIL)
      end,
    }
    require('switchboard').setup(opts)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local status = require('switchboard.status')
    T.wait(function()
      local info = status.usage.accountInfo
      return info and info.mode == 'hosted' and info.email == 'ada@example.com'
    end, 'the session to be resumed, as ada@example.com', 45000)
    T.eq(asked, opts.gateway_url, 'the store is asked for this gateway')
    T.contains(require('switchboard').statusline(), '(Pro, cloud)', 'the statusline')
    -- The rotated token reaches the store in its own message, which may come after the account's.
    T.wait(function()
      return #stored >= 1
    end, 'the rotated refresh token to be stored', 10000)
    T.ok(#stored >= 1 and type(stored[#stored]) == 'string', 'a new refresh token was stored')
    T.ok(stored[#stored] ~= given, 'rotated: not the one presented')
  end,
}
